"""The dashboard's snapshot of the gateway, as one caller may see it (OperationsService's domain).

Models and queues are the gateway's and everyone sees them (a caller meets the queues anyway). Requests
and personal runtimes belong to accounts: the admin key sees every account's, any other credential its
own account's only, and a call without a credential (an open single-user gateway) the requests made
without one. Requests are metadata only: the activity log never holds a prompt or an answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lattice.server.activity import GATEWAY, Activity, Bucket, FinishedRequest
from lattice.server.gateway import Gateway
from lattice.server.personal_runtimes import PersonalRuntimes
from lattice.server.principals import Principal
from lattice.server.registry import RegisteredModel

RECENT_DEFAULT = 50
RECENT_MAX = 500
RUNTIMES_MAX = 200
"""Personal runtimes shown at most (newest first)."""

SCOPE_ACCOUNT = "account"
SCOPE_GATEWAY = "gateway"


@dataclass(frozen=True)
class ModelView:
    model: RegisteredModel
    state: str
    running: int
    queued: int
    max_concurrency: int
    default_max_tokens: int


@dataclass(frozen=True)
class RuntimeView:
    lattice_id: str
    account_id: str
    display_name: str
    status: str
    in_flight: int
    last_seen: float | None
    """Wall clock (`time.time()`) of the daemon's last message, while connected."""


@dataclass(frozen=True)
class Dashboard:
    scope: str
    account_id: str
    models: list[ModelView]
    runtimes: list[RuntimeView]
    buckets: list[Bucket]
    bucket_seconds: int
    window_seconds: int
    recent: list[FinishedRequest]


class Operations:
    def __init__(self, gateway: Gateway, activity: Activity, personal: PersonalRuntimes | None = None) -> None:
        self._gateway = gateway
        self._activity = activity
        self._personal = personal

    async def dashboard(self, principal: Principal, recent_limit: int = 0) -> Dashboard:
        """What `principal` may see now; `recent_limit` latest requests (0: the default, capped)."""
        everyone = principal.kind == "admin"
        account = GATEWAY if everyone else principal.account_id
        limit = min(recent_limit or RECENT_DEFAULT, RECENT_MAX)
        return Dashboard(
            scope=SCOPE_GATEWAY if everyone else SCOPE_ACCOUNT,
            account_id=principal.account_id,
            models=self._models(),
            runtimes=await self._runtimes(account),
            buckets=self._activity.buckets(account),
            bucket_seconds=self._activity.bucket_seconds,
            window_seconds=self._activity.window_seconds,
            recent=self._activity.recent(account, limit),
        )

    def _models(self) -> list[ModelView]:
        admission = self._gateway.admission
        return [
            ModelView(
                model,
                model.backend.state(model.profile),
                admission.running(model.id),
                admission.waiting(model.id),
                admission.cap(model.id),
                self._gateway.generation_cap(model.profile),
            )
            for model in self._gateway.list_models()
        ]

    async def _runtimes(self, account: str | None) -> list[RuntimeView]:
        personal = self._personal
        if personal is None or account == "":  # no account, no runtimes
            return []
        records = await personal.records.list_active(account, RUNTIMES_MAX)
        now_wall, now = time.time(), time.monotonic()
        views = []
        for record in records:
            seen = personal.hub.last_seen(record.lattice_id)
            views.append(
                RuntimeView(
                    record.lattice_id,
                    record.account_id,
                    record.display_name,
                    personal.status(record),
                    personal.hub.in_flight(record.lattice_id),
                    None if seen is None else now_wall - (now - seen),
                )
            )
        return views
