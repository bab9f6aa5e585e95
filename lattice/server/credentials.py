"""Who is calling: the credential in call metadata, and the caller's identity for fairness."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from lattice.errors import InvalidArgument
from lattice.server.principals import Principal
from lattice.wire.names import (
    API_KEY_METADATA_KEY,
    AUTHORIZATION_METADATA_KEY,
    FORWARDED_FOR_METADATA_KEY,
    PROXY_SECRET_METADATA_KEY,
)


def api_key_from_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The credential of `x-api-key` or `authorization: Bearer`. Two different ones are refused
    (`CONFLICTING_CREDENTIALS`): acting silently as one of them is acting as someone the caller may not
    have meant; the same key in both headers is one credential."""
    sent = _credentials(metadata)
    if len(set(sent)) > 1:
        raise InvalidArgument(
            "the request carries two different credentials (x-api-key and Authorization: Bearer): send one",
            field="authorization",
            reason="CONFLICTING_CREDENTIALS",
        )
    return sent[0] if sent else None


def _credentials(metadata: Sequence[tuple[str, str | bytes]]) -> list[str]:
    sent = []
    for key, value in metadata:
        text = value.decode() if isinstance(value, bytes) else value
        if key == API_KEY_METADATA_KEY:
            sent.append(text)
        elif key == AUTHORIZATION_METADATA_KEY and text[:7].lower() == "bearer ":
            sent.append(text[7:].strip())
    return sent


def caller_identity(
    metadata: Mapping[str, str], peer: str, principal: Principal | None = None, *, proxy_secret: str | None = None
) -> str:
    """Who is calling, for fairness between callers (not for security): the authenticated credential,
    else a hash of the API key sent, else the client address the gateway's own shim reports (trusted only
    with the process's `proxy_secret`: anyone else could claim a new address with each call), else the
    peer's address."""
    if principal is not None and principal.kind != "anonymous":
        return principal.caller
    keys = _credentials(list(metadata.items()))  # the call was refused already if they differ
    if keys:
        return "key:" + hashlib.sha256(keys[0].encode()).hexdigest()[:16]
    forwarded = metadata.get(FORWARDED_FOR_METADATA_KEY, "").split(",")[0].strip()
    if forwarded and from_proxy(metadata, proxy_secret):
        return "client:" + forwarded
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer  # "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1"
    return "peer:" + host


def from_proxy(metadata: Mapping[str, str], proxy_secret: str | None) -> bool:
    """Whether the call carries the process's proxy secret (compared in constant time)."""
    sent = metadata.get(PROXY_SECRET_METADATA_KEY)
    if not proxy_secret or sent is None:
        return False
    return hmac.compare_digest(sent.encode(), proxy_secret.encode())
