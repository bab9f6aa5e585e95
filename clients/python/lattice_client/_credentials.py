"""Credentials: a developer API key or an OAuth access token. Neither ever shows in a repr or str,
nor in a log: hpack, which encodes HTTP/2 headers under grpclib, logs every header it encodes at DEBUG
(grpclib turns off h2's marking of `authorization` as sensitive), so its DEBUG records are dropped."""

from __future__ import annotations

import logging


class _DropHeaderDumps(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("hpack.hpack").addFilter(_DropHeaderDumps())


class ApiKey:
    """A developer key (`sk_…`, from `lattice keys create`), or a gateway's static `LATTICE_API_KEY`.
    Sent as `x-api-key`."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("an API key cannot be empty")
        self._key = key

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self._key),)

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)"

    __str__ = __repr__


class OAuthToken:
    """An OAuth access token (a JWT from the gateway's configured issuer) acting for its `sub`.
    Sent as `authorization: Bearer`."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an access token cannot be empty")
        self._token = token

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),)

    def __repr__(self) -> str:
        return "OAuthToken(<redacted>)"

    __str__ = __repr__


Credential = ApiKey | OAuthToken
