"""Metering: one usage record per chat, queued in memory and written in batches by a background task,
so a chat never waits on the database. `close()` writes what is left (a clean shutdown loses nothing);
`flush()` lets a reader see everything recorded so far."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from lattice.server.chat import Finish
from lattice.server.principals import Principal
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.resolver import Resolution
from lattice.server.store.usage import Metered, UsageLedger

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
BATCH_SIZE = 500


class UsageRecorder:
    def __init__(self, ledger: UsageLedger, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.ledger = ledger
        self._flush_seconds = flush_seconds
        self._pending: list[Metered] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    def record(
        self,
        principal: Principal | None,
        model: str,
        resolution: Resolution | None,
        *,
        arrived: float,
        finish: Finish | None,
        outcome: str,
    ) -> None:
        """Queues one chat; `arrived` is its `time.monotonic()` at arrival."""
        backend = resolution.chosen.profile.backend if resolution else ""
        model = resolution.model if resolution else model
        self._pending.append(
            Metered(
                account_id=principal.account_id if principal else "",
                key_id=principal.credential_id if principal else "",
                created_at=dt.datetime.now(dt.UTC),
                model=model,
                backend=backend,
                runtime_id=model.removeprefix(PERSONAL_PREFIX) if model.startswith(PERSONAL_PREFIX) else "",
                prompt_tokens=finish.usage.prompt_tokens if finish else 0,
                completion_tokens=finish.usage.completion_tokens if finish else 0,
                duration_ms=round((time.monotonic() - arrived) * 1000),
                outcome=outcome,
            )
        )

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = self._pending[:BATCH_SIZE], self._pending[BATCH_SIZE:]
                try:
                    await self.ledger.write(batch)
                except Exception:
                    self._pending[:0] = batch  # kept for the next try: usage is not dropped on a blip
                    raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("writing usage records failed; retrying in %.0f s", self._flush_seconds)
