"""The fenced blocks of a Markdown document, as a reader would copy them.

A block is run as it is written (tests/docs/test_readme.py), unless the line before its fence is a marker:
`<!-- readme-test: skip: why -->` (it starts a server, or is a fragment of another block) or
`<!-- readme-test: keyed -->` (it runs against a gateway started with `LATTICE_API_KEY`, that key in
the shell's `LATTICE_API_KEY`)."""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass

SHELL = frozenset({"", "sh", "bash", "shell", "console"})
PYTHON = frozenset({"python", "py"})
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[\w-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(?P<kind>skip|keyed)(?::\s*(?P<why>.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: pathlib.Path
    line: int
    """The fence's line number (1-based)."""
    language: str
    text: str
    marker: str = ""
    """`skip`, `keyed` or empty."""
    why: str = ""

    @property
    def runnable(self) -> bool:
        return self.language in SHELL | PYTHON

    def id(self, root: pathlib.Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def blocks(path: pathlib.Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = len(opening["indent"])
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _MARKER.match(previous)
        found.append(
            Block(
                path,
                i + 1,
                opening["info"].lower(),
                body,
                marker["kind"] if marker else "",
                (marker["why"] or "") if marker else "",
            )
        )
        i = end + 1
    return found
