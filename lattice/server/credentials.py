"""Who is calling: the credential in call metadata, and the caller's identity for fairness."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from lattice.server.principals import Principal


def api_key_from_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        text = value.decode() if isinstance(value, bytes) else value
        if key == "x-api-key":
            return text
        if key == "authorization" and text[:7].lower() == "bearer ":
            return text[7:].strip()
    return None


def caller_identity(metadata: Mapping[str, str], peer: str, principal: Principal | None = None) -> str:
    """Who is calling, for fairness between callers (not for security): the authenticated credential,
    else a hash of the API key sent, else the client address a proxy such as the shim reports, else
    the peer's address."""
    if principal is not None and principal.kind != "anonymous":
        return principal.caller
    key = api_key_from_metadata(list(metadata.items()))
    if key is not None:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    forwarded = metadata.get("x-forwarded-for", "").split(",")[0].strip()
    if forwarded:
        return "client:" + forwarded
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer  # "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1"
    return "peer:" + host
