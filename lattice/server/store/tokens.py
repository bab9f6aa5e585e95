"""Minting and hashing the gateway's secrets.

Every secret is 256 bits from `secrets`, so one SHA-256 is enough to store it: there is nothing
to brute-force that a slow hash would protect (unlike passwords).
"""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "sk_"
BOOTSTRAP_TOKEN_PREFIX = "plrt_v1_"
DAEMON_CREDENTIAL_PREFIX = "lrd_"
RUNTIME_ID_PREFIX = "lat_"
ACCOUNT_ID_PREFIX = "acct_"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_id(prefix: str, length: int = 20) -> str:
    """`prefix` + lower-case letters and digits: safe in URLs, shells and model names."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))
