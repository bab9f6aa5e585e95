"""Lattice's errors: one root, a stable reason each.

    LatticeError                      code            reason
    ├── InvalidArgument               INVALID_ARGUMENT INVALID_ARGUMENT, TOO_MANY_MESSAGES, PROMPT_TOO_LARGE, …
    │   ├── ContextLengthExceeded     INVALID_ARGUMENT CONTEXT_LENGTH_EXCEEDED
    │   ├── PromptTooLongForDuration  INVALID_ARGUMENT PROMPT_TOO_LONG_FOR_DURATION
    │   └── SwarmLimitExceeded        INVALID_ARGUMENT SWARM_LIMIT_EXCEEDED (+ the limit's name)
    ├── ModelNotFound                 NOT_FOUND        MODEL_NOT_FOUND
    ├── NotFound                      NOT_FOUND        RUNTIME_NOT_FOUND, API_KEY_NOT_FOUND
    ├── NoModelSatisfies              FAILED_PRECONDITION NO_MODEL_SATISFIES
    ├── Unauthenticated               UNAUTHENTICATED  API_KEY_MISSING / API_KEY_INVALID, BOOTSTRAP_TOKEN_*, …
    ├── PermissionDenied              PERMISSION_DENIED INSUFFICIENT_SCOPES, RUNTIME_REVOKED, RUNTIME_REPAIRED
    ├── ResourceExhausted             RESOURCE_EXHAUSTED UPSTREAM_RATE_LIMITED (+ RetryInfo, as all below)
    │   ├── QueueFull                 RESOURCE_EXHAUSTED QUEUE_FULL
    │   ├── QueueTimeout              RESOURCE_EXHAUSTED QUEUE_TIMEOUT
    │   │   └── PromptQueueTimeout    RESOURCE_EXHAUSTED QUEUE_TIMEOUT (behind other prompts on the engine)
    │   ├── RateLimited               RESOURCE_EXHAUSTED RATE_LIMITED
    │   └── TooManyStreams            RESOURCE_EXHAUSTED TOO_MANY_STREAMS
    ├── DeadlineExceeded              DEADLINE_EXCEEDED DEADLINE_EXCEEDED
    │   └── StreamDurationExceeded    DEADLINE_EXCEEDED STREAM_DURATION_EXCEEDED
    ├── BackendUnavailable            UNAVAILABLE      BACKEND_UNAVAILABLE (+ RetryInfo when known)
    │   ├── RuntimeUnreachable        UNAVAILABLE      RUNTIME_UNREACHABLE (the daemon's stream is gone)
    │   └── RuntimeNotPaired          UNAVAILABLE      RUNTIME_NOT_PAIRED
    ├── BackendRejected               INVALID_ARGUMENT UPSTREAM_REJECTED
    ├── BackendFailed                 INTERNAL         BACKEND_FAILED
    └── SwarmFailed                   (its failure's)  (its failure's): every agent failed, or a pipeline step

A personal runtime's daemon reports a failure as a reason alone; `from_reason` rebuilds the error
of that reason's family on the gateway's side (`RELAYED_FAILURES`).

Domain code raises these and knows nothing of gRPC; `lattice.server.services.status`
turns them into a `google.rpc.Status` with `ErrorInfo{reason, domain="lattice"}`,
and the shim turns that into OpenAI's error envelope. `code` names a gRPC status
code so both sides map it without guessing from exception types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

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


class PromptTooLongForDuration(InvalidArgument):
    """The prompt alone, at the model's measured rate, would outlast the chat's allowed duration."""

    default_reason = "PROMPT_TOO_LONG_FOR_DURATION"


class SwarmLimitExceeded(InvalidArgument):
    """The swarm would exceed a limit; `limit` names it (also in the ErrorInfo metadata)."""

    default_reason = "SWARM_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, field: str, limit: str) -> None:
        super().__init__(message, field=field)
        self.metadata["limit"] = limit
        self.limit = limit


class QueueFull(ResourceExhausted):
    default_reason = "QUEUE_FULL"


class QueueTimeout(ResourceExhausted):
    default_reason = "QUEUE_TIMEOUT"


class PromptQueueTimeout(QueueTimeout):
    """Waited too long behind other prompts on an in-process engine (the same reason as the admission's)."""


class RateLimited(ResourceExhausted):
    default_reason = "RATE_LIMITED"


class TooManyStreams(ResourceExhausted):
    default_reason = "TOO_MANY_STREAMS"


class StreamDurationExceeded(DeadlineExceeded):
    default_reason = "STREAM_DURATION_EXCEEDED"


class RuntimeUnreachable(BackendUnavailable):
    """A personal runtime's daemon is not connected, or its stream ended."""

    default_reason = "RUNTIME_UNREACHABLE"

    def __init__(self, lattice_id: str, why: str) -> None:
        super().__init__(f"personal runtime {lattice_id} is not reachable: {why}")


class RuntimeNotPaired(BackendUnavailable):
    default_reason = "RUNTIME_NOT_PAIRED"


class Failure(Protocol):
    """A failure as reported (a swarm agent's): a status code name, a reason, maybe a retry delay."""

    @property
    def code(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def retry_after_seconds(self) -> float | None: ...


class SwarmFailed(LatticeError):
    """The swarm has no answer: every agent failed, or a pipeline step did.

    It carries the failure's own status code and reason (a timeout stays DEADLINE_EXCEEDED, an
    unreachable backend UNAVAILABLE), so a caller retries what is worth retrying."""

    def __init__(self, message: str, failure: Failure, **metadata: str) -> None:
        super().__init__(
            message, reason=failure.reason, metadata=metadata, retry_after_seconds=failure.retry_after_seconds
        )
        self.code = failure.code  # type: ignore[misc]  # the failure's status, not one fixed code per class


RELAYED_FAILURES: tuple[tuple[tuple[str, ...], type[LatticeError]], ...] = (
    (("BACKEND_UNAVAILABLE", "RUNTIME_UNREACHABLE", "CANCELLED"), BackendUnavailable),
    (("UPSTREAM_RATE_LIMITED", "QUEUE_FULL", "QUEUE_TIMEOUT"), ResourceExhausted),
    (("UPSTREAM_REJECTED", "INVALID_ARGUMENT", "CONTEXT_LENGTH_EXCEEDED"), BackendRejected),
)
"""What a daemon's failure becomes on the gateway, by its reason's family; anything else is BackendFailed."""


def from_reason(reason: str, message: str) -> LatticeError:
    """The error a relayed failure stands for; the reason itself is kept."""
    for reasons, kind in RELAYED_FAILURES:
        if reason in reasons:
            return kind(message, reason=reason)
    return BackendFailed(message, reason=reason or None)
