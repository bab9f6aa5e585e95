"""Credentials → principals: the static admin key, developer keys, OAuth access tokens, daemon
credentials. No gRPC here; the interceptor in `auth.py` calls this once per call."""

from __future__ import annotations

import hmac

from lattice.errors import PermissionDenied, Unauthenticated
from lattice.server.oauth import OAuthVerifier
from lattice.server.principals import ALL_SCOPES, INFERENCE, Principal
from lattice.server.store.accounts import ApiKeys
from lattice.server.store.runtimes import RuntimeRecords
from lattice.server.store.tokens import API_KEY_PREFIX, DAEMON_CREDENTIAL_PREFIX
from lattice.server.ttl_cache import TtlCache

ANONYMOUS = Principal("anonymous", "", frozenset({INFERENCE}))


class Authenticator:
    def __init__(
        self,
        *,
        static_key: str | None,
        admin_account: str,
        keys: ApiKeys | None = None,
        runtimes: RuntimeRecords | None = None,
        oauth: OAuthVerifier | None = None,
        allow_anonymous: bool = False,
        cache_seconds: float = 0.0,
    ) -> None:
        """`allow_anonymous`: calls without a credential get inference on the gateway's own models (a
        single-user gateway on loopback), and so do calls with a key in none of Lattice's formats.
        A Lattice credential that is sent (`sk_…`, `lrd_…`, an OAuth token) is always checked.
        `cache_seconds`: how long a checked developer key is trusted without asking the store again
        (so a revocation through the CLI takes that long to bite)."""
        self._static = static_key
        self._admin = Principal("admin", admin_account, ALL_SCOPES, credential_id="admin")
        self._keys = keys
        self._runtimes = runtimes
        self._oauth = oauth
        self._allow_anonymous = allow_anonymous
        self._cache: TtlCache[str, Principal] = TtlCache(cache_seconds)

    async def authenticate(self, credential: str | None) -> Principal:
        if credential is None:
            if self._allow_anonymous:
                return ANONYMOUS
            raise Unauthenticated(
                "this gateway needs a credential: send x-api-key or Authorization: Bearer", reason="API_KEY_MISSING"
            )
        if self._static is not None and hmac.compare_digest(credential.encode(), self._static.encode()):
            return self._admin
        if credential.startswith(API_KEY_PREFIX) and self._keys is not None:
            return await self._developer_key(credential)
        if credential.startswith(DAEMON_CREDENTIAL_PREFIX) and self._runtimes is not None:
            return await self._daemon(credential)
        if self._oauth is not None and credential.count(".") == 2:
            return self._oauth.verify(credential)
        if self._allow_anonymous:
            # OpenAI clients must send *some* key ("unused", "sk-no-key"): on an open gateway, one
            # that is none of ours is no credential at all, as it was before keys existed.
            return ANONYMOUS
        raise Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")

    async def _developer_key(self, key: str) -> Principal:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        assert self._keys is not None
        principal = await self._keys.authenticate(key)
        if principal is None:
            raise Unauthenticated("the API key is not valid or was revoked", reason="API_KEY_INVALID")
        self._cache.put(key, principal)
        return principal

    async def _daemon(self, credential: str) -> Principal:
        assert self._runtimes is not None
        record = await self._runtimes.by_credential(credential)
        if record is None:
            raise Unauthenticated("the daemon credential is not valid", reason="DAEMON_CREDENTIAL_INVALID")
        if record.revoked_at is not None:
            raise PermissionDenied(f"personal runtime {record.lattice_id} is revoked", reason="RUNTIME_REVOKED")
        return Principal(
            "daemon", record.account_id, frozenset(), credential_id=record.lattice_id, lattice_id=record.lattice_id
        )
