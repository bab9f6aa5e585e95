"""What every proxied backend shares: its model list re-read in the background, as its health."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable

from lattice.config import Upstream
from lattice.server.backends.base import Backend

log = logging.getLogger(__name__)

ModelsCallback = Callable[[list[str]], None]
"""Told the model ids an upstream serves after each successful refresh."""


class DiscoveringUpstream(Backend):
    """A backend for one upstream whose model list doubles as its health check.

    Subclasses read the list in `fetch_model_ids` (raising on failure) and release
    their client in `close_client`; an upstream that fails the check is unavailable
    (the resolver skips its models) until a later refresh succeeds.
    """

    def __init__(self, upstream: Upstream, on_models: ModelsCallback) -> None:
        self._upstream = upstream
        self._on_models = on_models
        self._healthy = False
        self._refresher: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        await self.refresh()
        self._refresher = asyncio.create_task(self._refresh_forever(), name=f"refresh {self._upstream.name}")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await self.close_client()

    async def refresh(self) -> None:
        """Re-reads the model list; configured `models`, when given, are what it serves."""
        try:
            ids = await self.fetch_model_ids()
        except UpstreamDown as down:
            self.mark_unhealthy(str(down))
            return
        self._set_health(True, f"{len(self._upstream.models or ids)} models")
        self._on_models(list(self._upstream.models) or ids)

    def mark_unhealthy(self, why: str) -> None:
        """Skip this upstream until its next successful refresh (its connection just failed)."""
        self._set_health(False, why)

    @abc.abstractmethod
    async def fetch_model_ids(self) -> list[str]:
        """The upstream's model ids; raises `UpstreamDown` when it cannot be reached or read."""

    @abc.abstractmethod
    async def close_client(self) -> None:
        """Closes the HTTP client."""

    def _set_health(self, healthy: bool, detail: str) -> None:
        if healthy != self._healthy:
            log.info("upstream %s is %s: %s", self._upstream.name, "healthy" if healthy else "unhealthy", detail)
        self._healthy = healthy

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._upstream.refresh_seconds)
            await self.refresh()


class UpstreamDown(Exception):
    """The model list could not be had; the message says why."""
