"""User-authorized mode: OAuth access tokens (JWTs) verified against the issuer's public keys.

The keys come from a file the operator configures (PEM, or a JWKS document): the gateway never
fetches them, so a network failure cannot turn into an authentication bypass or outage.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jwt

from lattice.errors import Unauthenticated
from lattice.server.principals import Principal, parse_scopes

ALGORITHMS = ("RS256", "ES256", "EdDSA")
ACCOUNT_PREFIX = "oauth:"
"""An OAuth subject's account is `oauth:<sub>`: built-in accounts (the static key's, developer keys'
`acct_…`) can never be named by a token, whatever its issuer puts in `sub`."""


class OAuthVerifier:
    def __init__(self, issuer: str, keys_file: pathlib.Path, audience: str | None = None) -> None:
        self._issuer = issuer
        self._audience = audience
        text = keys_file.read_text()
        self._keys: dict[str, Any] = {}
        if text.lstrip().startswith("{"):
            for jwk in jwt.PyJWKSet.from_dict(json.loads(text)).keys:
                self._keys[jwk.key_id or ""] = jwk.key
        else:
            self._keys[""] = text  # one PEM public key

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid") or "") or next(iter(self._keys.values()))
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "iss"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired", reason="ACCESS_TOKEN_EXPIRED") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the access token is not valid: {error}", reason="ACCESS_TOKEN_INVALID") from None
        subject = str(claims["sub"])
        if not subject.strip():
            # Every such token would share one empty account.
            raise Unauthenticated("the access token has an empty subject (sub)", reason="ACCESS_TOKEN_INVALID")
        scopes = claims.get("scope") or " ".join(claims.get("scp") or ())
        return Principal("oauth", ACCOUNT_PREFIX + subject, parse_scopes(str(scopes)), credential_id=subject)
