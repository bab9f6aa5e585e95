"""Server-sent events as they arrive in pieces: the payloads of their `data:` lines."""

from __future__ import annotations


class SseDataLines:
    """Feed it the bytes of an SSE stream as they come; it returns the `data:` payloads of each whole line.

    A line cut between two reads waits for its end. Comments, `event:` and `id:` lines and the blank lines
    between events are skipped: OpenAI-compatible servers put one JSON chunk on each `data:` line.
    """

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        lines = (self._partial + data).split(b"\n") if self._partial else data.split(b"\n")
        self._partial = lines.pop()
        return [line[5:].strip().decode() for line in lines if line.startswith(b"data:")]
