"""Lattice's errors: one root, a stable reason each.

    LatticeError                      code            reason
    ├── InvalidArgument               INVALID_ARGUMENT INVALID_ARGUMENT
    │   └── ContextLengthExceeded     INVALID_ARGUMENT CONTEXT_LENGTH_EXCEEDED
    ├── ModelNotFound                 NOT_FOUND        MODEL_NOT_FOUND
    ├── NotFound                      NOT_FOUND        RUNTIME_NOT_FOUND, API_KEY_NOT_FOUND
    ├── NoModelSatisfies              FAILED_PRECONDITION NO_MODEL_SATISFIES
    ├── Unauthenticated               UNAUTHENTICATED  API_KEY_MISSING / API_KEY_INVALID, BOOTSTRAP_TOKEN_*, …
    ├── PermissionDenied              PERMISSION_DENIED INSUFFICIENT_SCOPES, RUNTIME_REVOKED, RUNTIME_REPAIRED
    ├── ResourceExhausted             RESOURCE_EXHAUSTED UPSTREAM_RATE_LIMITED, QUEUE_FULL, QUEUE_TIMEOUT (+ RetryInfo)
    ├── DeadlineExceeded              DEADLINE_EXCEEDED DEADLINE_EXCEEDED
    ├── BackendUnavailable            UNAVAILABLE      BACKEND_UNAVAILABLE (+ RetryInfo when known), RUNTIME_UNREACHABLE
    ├── BackendRejected               INVALID_ARGUMENT UPSTREAM_REJECTED
    └── BackendFailed                 INTERNAL         BACKEND_FAILED

Domain code raises these and knows nothing of gRPC; `lattice.server.services.status`
turns them into a `google.rpc.Status` with `ErrorInfo{reason, domain="lattice"}`,
and the shim turns that into OpenAI's error envelope. `code` names a gRPC status
code so both sides map it without guessing from exception types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

ERROR_DOMAIN = "lattice"


class LatticeError(Exception):
    """Base of every error a caller may see; carries a stable machine-readable reason."""

    code: ClassVar[str] = "INTERNAL"
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(LatticeError):
    """The request is malformed; `field` names the offending field (proto path)."""

    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str, reason: str | None = None) -> None:
        super().__init__(message, reason=reason, metadata={"field": field})
        self.field = field


class ContextLengthExceeded(InvalidArgument):
    """The prompt (plus `max_tokens`) does not fit the model's context window."""

    default_reason = "CONTEXT_LENGTH_EXCEEDED"


class ModelNotFound(LatticeError):
    code = "NOT_FOUND"
    default_reason = "MODEL_NOT_FOUND"


class NotFound(LatticeError):
    """A record that does not exist, or that the caller may not know exists."""

    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class NoModelSatisfies(LatticeError):
    """Models match the expression, but none meets the request's hard constraints."""

    code = "FAILED_PRECONDITION"
    default_reason = "NO_MODEL_SATISFIES"


class Unauthenticated(LatticeError):
    code = "UNAUTHENTICATED"
    default_reason = "API_KEY_INVALID"


class PermissionDenied(LatticeError):
    """Authenticated, but not allowed: a missing scope, a revoked runtime."""

    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class BackendUnavailable(LatticeError):
    code = "UNAVAILABLE"
    default_reason = "BACKEND_UNAVAILABLE"


class ResourceExhausted(LatticeError):
    """Over a rate or capacity limit; `retry_after_seconds` says when to try again."""

    code = "RESOURCE_EXHAUSTED"
    default_reason = "UPSTREAM_RATE_LIMITED"


class DeadlineExceeded(LatticeError):
    """The caller's deadline passed before the work could start."""

    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class BackendRejected(LatticeError):
    """An upstream refused the request itself (its 4xx); retrying elsewhere would not help."""

    code = "INVALID_ARGUMENT"
    default_reason = "UPSTREAM_REJECTED"


class BackendFailed(LatticeError):
    code = "INTERNAL"
    default_reason = "BACKEND_FAILED"
