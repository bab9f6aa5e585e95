"""Personal runtimes as the API sees them: records (store) overlaid with the live relay (hub), and
the resolution of `lattice:personal:<latticeId>` for the caller's account."""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass

from lattice.config import ModelProfile
from lattice.errors import InvalidArgument, PermissionDenied, RuntimeUnreachable, Unauthenticated
from lattice.server.principals import INFERENCE, Principal
from lattice.server.registry import RegisteredModel
from lattice.server.relay import PERSONAL_PREFIX
from lattice.server.relay.backend import RelayBackend
from lattice.server.relay.hub import RelayHub
from lattice.server.resolver import Candidate, Resolution, Verdict
from lattice.server.store.runtimes import Redemption, RuntimeRecords
from lattice.server.store.schema import PersonalRuntimeRecord
from lattice.server.ttl_cache import TtlCache
from lattice.wire.sealing import check_public_key


@dataclass(frozen=True)
class RuntimeView:
    lattice_id: str
    account_id: str
    display_name: str
    execution_backend: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class BootstrapGrant:
    lattice_id: str
    token: str
    expires_at: dt.datetime
    command: str


@dataclass(frozen=True)
class Pairing:
    """What a daemon learns by redeeming its token."""

    redemption: Redemption
    relay_endpoint: str
    gateway_public_key: bytes
    heartbeat_seconds: int


class PersonalRuntimes:
    def __init__(
        self,
        records: RuntimeRecords,
        hub: RelayHub,
        *,
        gateway_url: str = "",
        relay_endpoint: str = "",
        cache_seconds: float = 0.0,
    ) -> None:
        """`gateway_url` (REST, for the pairing command) and `relay_endpoint` (gRPC, for daemons) may be
        set once the servers have bound their ports. `cache_seconds`: how long a chat may trust a runtime's
        record without reading the store (revoking through this gateway forgets it at once)."""
        self.records = records
        self.hub = hub
        self._cached: TtlCache[str, PersonalRuntimeRecord] = TtlCache(cache_seconds)
        self.gateway_url = gateway_url
        self.relay_endpoint = relay_endpoint
        self._backend = RelayBackend(hub)

    def status(self, record: PersonalRuntimeRecord) -> str:
        if record.revoked_at is not None:
            return "revoked"
        if self.hub.reachable(record.lattice_id):
            return "reachable"
        return "offline" if record.paired_at is not None else "unpaired"

    def view(self, record: PersonalRuntimeRecord) -> RuntimeView:
        return RuntimeView(
            record.lattice_id,
            record.account_id,
            record.display_name,
            record.execution_backend,
            self.status(record),
            record.created_at,
            record.updated_at,
        )

    async def create(self, principal: Principal, display_name: str, execution_backend: str) -> RuntimeView:
        return self.view(await self.records.create(principal.account_id, display_name, execution_backend))

    async def list(self, principal: Principal, page_size: int, page_token: str) -> tuple[list[RuntimeView], str]:
        rows, token = await self.records.list(principal.account_id, page_size, page_token)
        return [self.view(r) for r in rows], token

    async def get(self, principal: Principal, lattice_id: str) -> RuntimeView:
        return self.view(await self.records.get(principal.account_id, lattice_id))

    async def revoke(self, principal: Principal, lattice_id: str) -> RuntimeView:
        record = await self.records.revoke(principal.account_id, lattice_id)
        self._cached.forget(lattice_id)
        self.hub.close_runtime(lattice_id, _revoked(lattice_id))
        return self.view(record)

    async def mint(self, principal: Principal, lattice_id: str, ttl_seconds: int) -> BootstrapGrant:
        token, expires = await self.records.mint_bootstrap_token(principal.account_id, lattice_id, ttl_seconds)
        command = f"lattice-ctl relay connect --gateway {_quoted(self.gateway_url)} --bootstrap-token {_quoted(token)}"
        return BootstrapGrant(lattice_id, token, expires, command)

    async def redeem(self, token: str, public_key: bytes) -> Pairing:
        check_public_key(public_key)  # before the token is spent
        redemption = await self.records.redeem(token.strip(), public_key)
        # The old credential is refused from now on (its hash was replaced); whoever holds it, the owner's
        # old machine or a thief, loses the stream it has open too, and with it the owner's work.
        lattice_id = redemption.record.lattice_id
        self._cached.forget(lattice_id)
        self.hub.close_runtime(lattice_id, _repaired(lattice_id))
        return Pairing(redemption, self.relay_endpoint, self.hub.public_key, round(self.hub.heartbeat_seconds))

    def forget(self, lattice_id: str) -> None:
        """The runtime's record changed elsewhere (another replica revoked it): read it again."""
        self._cached.forget(lattice_id)

    async def _record(self, account_id: str, lattice_id: str) -> PersonalRuntimeRecord:
        """The runtime's record for a chat: from a short cache, so a chat costs no database read."""
        cached = self._cached.get(lattice_id)
        if cached is not None and cached.account_id == account_id:
            return cached
        record = await self.records.get(account_id, lattice_id)
        self._cached.put(lattice_id, record)
        return record

    async def resolve(self, expression: str, principal: Principal | None) -> Resolution:
        """`lattice:personal:<id>` → a resolution onto the relay: the caller's own, paired, connected
        runtime, or a refusal that says which of those it is not."""
        lattice_id = expression.removeprefix(PERSONAL_PREFIX).strip()
        if not lattice_id or not lattice_id.replace("_", "").isalnum():
            raise InvalidArgument(
                f"{expression!r}: a personal runtime is named alone, as lattice:personal:lat_…", field="model"
            )
        if principal is None or not principal.account_id:
            raise Unauthenticated(
                "personal runtimes answer only their own account: send its API key", reason="API_KEY_MISSING"
            )
        principal.require(INFERENCE)
        record = await self._record(principal.account_id, lattice_id)
        if record.revoked_at is not None:
            raise _revoked(lattice_id)
        if not self.hub.reachable(lattice_id):
            why = self.hub.absence(lattice_id) if record.paired_at else "no daemon has been paired with it yet"
            raise RuntimeUnreachable(lattice_id, why)
        profile = ModelProfile(id=PERSONAL_PREFIX + lattice_id, backend="relay", owned_by=record.account_id)
        model = RegisteredModel(profile, self._backend)
        chosen = Candidate(profile.id, Verdict.CHOSEN, f"personal runtime {record.display_name!r}")
        return Resolution(expression, model, (chosen,))


def _quoted(text: str) -> str:
    """Always quoted, so the command pastes the same in every shell."""
    return f"'{text}'" if "'" not in text else shlex.quote(text)


def _revoked(lattice_id: str) -> PermissionDenied:
    return PermissionDenied(f"personal runtime {lattice_id} is revoked", reason="RUNTIME_REVOKED")


def _repaired(lattice_id: str) -> PermissionDenied:
    return PermissionDenied(
        f"personal runtime {lattice_id} was paired again: this daemon's credential is no longer valid",
        reason="RUNTIME_REPAIRED",
    )
