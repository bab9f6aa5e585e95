"""Joins streamed tool-call fragments (OpenAI's shape: id and name first, arguments in pieces)."""

from __future__ import annotations

from collections.abc import Iterable

from lattice.server.chat import ToolCall, ToolCallDelta


class ToolCallAssembler:
    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def add(self, fragments: Iterable[ToolCallDelta]) -> None:
        for fragment in fragments:
            if fragment.id:
                self._ids[fragment.index] = fragment.id
            if fragment.name:
                self._names[fragment.index] = fragment.name
            self._arguments.setdefault(fragment.index, []).append(fragment.arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(self._ids.get(i, f"call_{i}"), self._names.get(i, ""), "".join(self._arguments[i]))
            for i in sorted(self._arguments)
        )
