"""Cut a token stream at the first stop string, without ever emitting part of one.

Text that could still grow into a stop string is held back until the next
chunk says whether it did; the stop string itself is never emitted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StopScan:
    text: str
    """Text that is safe to emit now."""
    stopped: bool
    """True once a stop string was found: emit `text`, then end the stream."""


class StopStringMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, chunk: str) -> StopScan:
        if not self._stops:
            return StopScan(chunk, stopped=False)
        text = self._pending + chunk
        first = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if first >= 0:
            self._pending = ""
            return StopScan(text[:first], stopped=True)
        keep = self._longest_partial_suffix(text)
        self._pending = text[len(text) - keep :]
        return StopScan(text[: len(text) - keep], stopped=False)

    def flush(self) -> str:
        """What was held back, at the natural end of generation."""
        rest, self._pending = self._pending, ""
        return rest

    def _longest_partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
