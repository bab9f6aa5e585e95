"""An upstream's HTTP failure → the Lattice error a caller (and the fallback logic) acts on."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from lattice.errors import BackendRejected, BackendUnavailable, LatticeError, ResourceExhausted


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds, whether given as a number or an HTTP date."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def from_status(upstream: str, status: int, headers: Mapping[str, str], body: str) -> LatticeError:
    detail = f"upstream {upstream!r} answered HTTP {status}: {body[:300].strip()}"
    retry = retry_after_seconds(headers)
    if status == 429:
        return ResourceExhausted(detail, retry_after_seconds=retry if retry is not None else 1.0)
    if status in (401, 403):
        return BackendUnavailable(detail, reason="UPSTREAM_AUTH_FAILED")
    if status == 404:
        # The upstream no longer has the model: another candidate may.
        return BackendUnavailable(detail, reason="UPSTREAM_MODEL_NOT_FOUND")
    if 400 <= status < 500:
        return BackendRejected(detail)
    return BackendUnavailable(detail, retry_after_seconds=retry)
