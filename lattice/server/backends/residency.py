"""Which in-process models are loaded: at most N, least recently used evicted first.

Pinned models are loaded at start and never evicted; a model with requests in
flight is not evicted either. When every resident model is pinned or busy, a
cold model cannot load now and the request is refused as `UNAVAILABLE`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from lattice.errors import BackendUnavailable
from lattice.observability import metrics


class ResidentModel(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def pinned(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    async def unload(self) -> None: ...


class Residency:
    def __init__(self, max_resident: int) -> None:
        self._max = max_resident
        self._loaded: OrderedDict[str, ResidentModel] = OrderedDict()
        self._loading_since: dict[str, float] = {}

    @property
    def resident(self) -> list[str]:
        """Loaded model ids, least recently used first."""
        return list(self._loaded)

    def touch(self, model: ResidentModel) -> None:
        self._loaded.move_to_end(model.model_id)

    def loaded(self, model: ResidentModel) -> None:
        self._loaded[model.model_id] = model
        since = self._loading_since.pop(model.model_id, None)
        metrics.model_loaded(model.model_id, 0.0 if since is None else time.monotonic() - since)

    async def make_room_for(self, model_id: str) -> None:
        """Evicts least recently used idle, unpinned models until one more fits. The model is expected
        to load next (`loaded`), which is how its load time is measured."""
        self._loading_since[model_id] = time.monotonic()
        while len(self._loaded) >= self._max:
            victim = next((m for m in self._loaded.values() if not m.pinned and not m.busy), None)
            if victim is None:
                raise BackendUnavailable(
                    f"cannot load {model_id!r} now: {len(self._loaded)} models are resident "
                    f"(the most allowed) and each is pinned or busy",
                    reason="NO_ROOM_TO_LOAD",
                    retry_after_seconds=1.0,
                )
            del self._loaded[victim.model_id]
            await victim.unload()
            metrics.model_evicted(victim.model_id)
