"""The docs name only files that exist: every relative link, and every repository path in backticks."""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.gateway_process import REPO

DOCUMENTS = sorted(
    {
        REPO / "README.md",
        REPO / "llms.txt",
        REPO / "SECURITY.md",
        REPO / "clients" / "python" / "README.md",
        REPO / "clients" / "typescript" / "README.md",
        *REPO.glob("docs/**/*.md"),
        *(p for p in REPO.glob("*/README.md") if "node_modules" not in p.parts),
    }
)
LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)")
TOP = "lattice|tests|scripts|clients|docs|proto|envoy|bench|\\.ci"
REPO_PATH = re.compile(rf"`((?:{TOP})/[\w./-]*\w)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_a_document_names_exists(document: pathlib.Path) -> None:
    text = document.read_text()
    missing = [target for target in LINK.findall(text) if not (document.parent / target).exists()]
    missing += [path for path in REPO_PATH.findall(text) if "*" not in path and not (REPO / path).exists()]
    assert missing == []
