"""A small cache of values trusted for a few seconds: what saves a chat a database read."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Each value is trusted for `seconds` after it was put (0: nothing is kept). At most `limit`
    entries; when full it starts over, which bounds memory without bookkeeping per hit."""

    def __init__(self, seconds: float, limit: int = 10_000) -> None:
        self._seconds = seconds
        self._limit = limit
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._seconds, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
