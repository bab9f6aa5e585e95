"""Cut a token stream at the first stop string, without ever emitting part of one.

Text that could still grow into a stop string is held back until the next
chunk says whether it did; the stop string itself is never emitted. The matcher
says which stop string it found: Anthropic's callers are told (`stop_sequence`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from lattice.server.chat import Delta, TokenLogprob


@dataclass
class StopScan:
    text: str
    """Text that is safe to emit now."""
    stopped: bool
    """True once a stop string was found: emit `text`, then end the stream."""
    stop: str = ""
    """The stop string that was found (the caller reports it: Anthropic's `stop_sequence`)."""


class StopStringMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    @property
    def active(self) -> bool:
        """False without stop strings: everything passes as it comes."""
        return bool(self._stops)

    def feed(self, chunk: str) -> StopScan:
        if not self._stops:
            return StopScan(chunk, stopped=False)
        text = self._pending + chunk
        # The earliest match; of two at the same place, the one the request lists first.
        found = min(((i, n) for n, i in enumerate(text.find(s) for s in self._stops) if i >= 0), default=None)
        if found is not None:
            at, which = found
            self._pending = ""
            return StopScan(text[:at], stopped=True, stop=self._stops[which])
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


class DeltaStops:
    """A `StopStringMatcher` over a stream of deltas, for an engine whose stop strings the gateway applies.

    A delta's log probabilities go out with the last of its text, so they stay with their tokens' text:
    held while any of it is held, and dropped with the stop string when the text held led into one (the
    stop string's tokens are not part of the answer). Tool-call fragments pass through as they are."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._matcher = StopStringMatcher(stops)
        self._held: deque[tuple[tuple[TokenLogprob, ...], int]] = deque()
        """Each held delta's log probabilities, and how many of its characters are still held."""
        self.stop = ""
        """The stop string that ended the stream, once one did."""

    @property
    def stopped(self) -> bool:
        return bool(self.stop)

    def feed(self, delta: Delta) -> Delta:
        """What of `delta` (and of what was held before it) goes out now; once `stopped`, end the stream."""
        if not self._matcher.active:
            return delta
        self._held.append((delta.logprobs, len(delta.text)))
        scan = self._matcher.feed(delta.text)
        released = len(scan.text)
        logprobs: list[TokenLogprob] = []
        while self._held and self._held[0][1] <= released:
            held_logprobs, chars = self._held.popleft()
            released -= chars
            logprobs.extend(held_logprobs)
        if self._held and released:
            held_logprobs, chars = self._held[0]
            self._held[0] = (held_logprobs, chars - released)
        if scan.stopped:
            self.stop = scan.stop
            self._held.clear()
        return replace(delta, text=scan.text, logprobs=tuple(logprobs))

    def flush(self) -> Delta:
        """What was held back, at the natural end of generation."""
        logprobs = tuple(lp for held, _ in self._held for lp in held)
        self._held.clear()
        return Delta(self._matcher.flush(), logprobs=logprobs)
