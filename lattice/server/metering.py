"""Metering: one usage record per chat (the `FinishedRequest` the gateway also gives the dashboard),
queued in memory and written in batches by a background task, so a chat never waits on the database.
`close()` writes what is left (a clean shutdown loses nothing); `flush()` lets a reader see everything
recorded so far."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from lattice.server.activity import FinishedRequest
from lattice.server.relay import PERSONAL_PREFIX
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

    def record(self, ended: FinishedRequest) -> None:
        """Queues one chat that ended, as the gateway reports it to every listener."""
        model = ended.model
        self._pending.append(
            Metered(
                account_id=ended.account_id,
                key_id=ended.key_id,
                created_at=dt.datetime.fromtimestamp(ended.end_time, dt.UTC),
                model=model,
                backend=ended.backend,
                runtime_id=model.removeprefix(PERSONAL_PREFIX) if model.startswith(PERSONAL_PREFIX) else "",
                prompt_tokens=ended.prompt_tokens,
                completion_tokens=ended.completion_tokens,
                duration_ms=ended.duration_ms,
                outcome=ended.outcome,
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
