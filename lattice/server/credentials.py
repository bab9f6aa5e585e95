"""Who is calling: API keys from call metadata (checked in constant time) and caller identity for fairness."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from lattice.errors import Unauthenticated


def api_key_from_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        text = value.decode() if isinstance(value, bytes) else value
        if key == "x-api-key":
            return text
        if key == "authorization" and text[:7].lower() == "bearer ":
            return text[7:].strip()
    return None


def caller_identity(metadata: Mapping[str, str], peer: str) -> str:
    """Who is calling, for fairness between callers (not for security): a hash of their API key,
    else the client address a proxy such as the shim reports, else the peer's address."""
    key = api_key_from_metadata(list(metadata.items()))
    if key is not None:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    forwarded = metadata.get("x-forwarded-for", "").split(",")[0].strip()
    if forwarded:
        return "client:" + forwarded
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer  # "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1"
    return "peer:" + host


def check_api_key(expected: str, presented: str | None) -> None:
    if presented is None:
        raise Unauthenticated(
            "this gateway needs an API key: send x-api-key or Authorization: Bearer",
            reason="API_KEY_MISSING",
        )
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")
