"""Every error the gateway sends, as one exception class per reason.

    LatticeError                          code it arrives with    retried
    ├── InvalidArgumentError              INVALID_ARGUMENT
    │   ├── ContextLengthExceededError    CONTEXT_LENGTH_EXCEEDED
    │   ├── TooManyMessagesError          TOO_MANY_MESSAGES
    │   ├── PromptTooLargeError           PROMPT_TOO_LARGE
    │   ├── SwarmLimitExceededError       SWARM_LIMIT_EXCEEDED
    │   ├── PromptTooLongForDurationError PROMPT_TOO_LONG_FOR_DURATION (at the model's measured prompt rate)
    │   ├── ConflictingCredentialsError   CONFLICTING_CREDENTIALS (x-api-key and a different Bearer)
    │   └── UpstreamRejectedError         UPSTREAM_REJECTED
    ├── NotFoundError                     NOT_FOUND
    │   ├── ModelNotFoundError            MODEL_NOT_FOUND
    │   └── RuntimeNotFoundError          RUNTIME_NOT_FOUND
    ├── FailedPreconditionError           FAILED_PRECONDITION
    │   └── NoModelSatisfiesError         NO_MODEL_SATISFIES
    ├── AuthenticationError               UNAUTHENTICATED
    │   ├── ApiKeyMissingError            API_KEY_MISSING
    │   ├── ApiKeyInvalidError            API_KEY_INVALID
    │   ├── AccessTokenExpiredError       ACCESS_TOKEN_EXPIRED
    │   ├── AccessTokenInvalidError       ACCESS_TOKEN_INVALID
    │   ├── BootstrapTokenUsedError       BOOTSTRAP_TOKEN_USED
    │   ├── BootstrapTokenExpiredError    BOOTSTRAP_TOKEN_EXPIRED
    │   └── BootstrapTokenInvalidError    BOOTSTRAP_TOKEN_INVALID
    ├── PermissionDeniedError             PERMISSION_DENIED
    │   ├── InsufficientScopesError       INSUFFICIENT_SCOPES (metadata["scope"] names the one missing)
    │   ├── RuntimeRevokedError           RUNTIME_REVOKED (UNAUTHENTICATED when a token is redeemed)
    │   └── RuntimeRepairedError          RUNTIME_REPAIRED (a daemon whose runtime was paired again)
    ├── ResourceExhaustedError            RESOURCE_EXHAUSTED      yes (not without ErrorInfo: a message too large)
    │   ├── QueueFullError                QUEUE_FULL              yes, after RetryInfo's delay
    │   ├── QueueTimeoutError             QUEUE_TIMEOUT           yes, after RetryInfo's delay
    │   ├── RateLimitedError              RATE_LIMITED            yes, after RetryInfo's delay
    │   ├── TooManyStreamsError           TOO_MANY_STREAMS        yes
    │   └── UpstreamRateLimitedError      UPSTREAM_RATE_LIMITED   yes, after RetryInfo's delay
    ├── UnavailableError                  UNAVAILABLE             yes (also: the gateway cannot be reached)
    │   ├── BackendUnavailableError       BACKEND_UNAVAILABLE     yes
    │   ├── RuntimeUnreachableError       RUNTIME_UNREACHABLE     yes
    │   ├── ModelLoadFailedError          MODEL_LOAD_FAILED       no: loading fails the same way again
    │   ├── NoRoomToLoadError             NO_ROOM_TO_LOAD         yes
    │   ├── UpstreamAuthFailedError       UPSTREAM_AUTH_FAILED    no: the operator must fix the upstream's key
    │   ├── UpstreamModelNotFoundError    UPSTREAM_MODEL_NOT_FOUND no
    │   └── UntrustedCertificateError     (UNAVAILABLE)           no: the gateway's TLS certificate is not trusted
    ├── DeadlineExceededError             DEADLINE_EXCEEDED (also: the call's own timeout ran out)
    │   └── StreamDurationExceededError   STREAM_DURATION_EXCEEDED
    └── InternalError                     INTERNAL
        └── BackendFailedError            BACKEND_FAILED

The reason comes from the `google.rpc.ErrorInfo` in the status details (trailer
`grpc-status-details-bin`), the retry delay from its `RetryInfo`. A reason this
version of the SDK does not know raises the class of its gRPC code (the
fallback: `UnavailableError` for an unknown UNAVAILABLE reason, and so on, or
`LatticeError` itself for a code without a class); `error.reason` still holds it.
An error without ErrorInfo (from the transport rather than the gateway) has
the code's name as its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class LatticeError(Exception):
    """Root of every error the SDK raises: a gRPC code, a stable reason, a message, metadata and,
    when the gateway says when to come back, the retry delay in seconds."""

    code: str
    """The gRPC status code's name (`RESOURCE_EXHAUSTED`), as it arrived."""
    reason: str
    """ErrorInfo's reason (`QUEUE_FULL`), or the code's name when the status carried none."""
    message: str
    metadata: Mapping[str, str]
    """ErrorInfo's metadata: `field`, `scope`, `model`, `limit`… depending on the reason."""
    retry_delay: float | None
    """RetryInfo's delay in seconds, when the gateway sent one."""
    domain: str
    """ErrorInfo's domain: `lattice` for the gateway's own errors."""
    retryable: bool
    """Whether the SDK may retry the call (before its first token only) when this error ends it."""

    default_code: ClassVar[str] = "UNKNOWN"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        code: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_delay: float | None = None,
        domain: str = "",
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.reason = reason or self.code
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay
        self.domain = domain
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles with every field (errors cross process boundaries in task queues)."""
        fields = {
            "reason": self.reason,
            "code": self.code,
            "metadata": dict(self.metadata),
            "retry_delay": self.retry_delay,
            "domain": self.domain,
            "retryable": self.retryable,
        }
        return (_rebuild, (type(self), self.message, fields))

    def __repr__(self) -> str:
        delay = "" if self.retry_delay is None else f", retry_delay={self.retry_delay:g}"
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r}{delay})"


class InvalidArgumentError(LatticeError):
    """The request itself is wrong; `metadata["field"]` names the field."""

    default_code = "INVALID_ARGUMENT"


class ContextLengthExceededError(InvalidArgumentError):
    """The prompt (plus `max_tokens`) does not fit the model's context window."""


class TooManyMessagesError(InvalidArgumentError):
    """More messages than the gateway accepts in one chat."""


class PromptTooLargeError(InvalidArgumentError):
    """The messages hold more characters than the gateway accepts."""


class SwarmLimitExceededError(InvalidArgumentError):
    """A swarm over one of its limits (`metadata["limit"]`)."""


class PromptTooLongForDurationError(InvalidArgumentError):
    """The prompt would take longer to process than a chat may run: send a shorter one."""


class ConflictingCredentialsError(InvalidArgumentError):
    """The call carried two different credentials; send one."""


class UpstreamRejectedError(InvalidArgumentError):
    """A proxied backend refused the request itself (its 4xx)."""


class NotFoundError(LatticeError):
    default_code = "NOT_FOUND"


class ModelNotFoundError(NotFoundError):
    """Nothing matches the model expression."""


class RuntimeNotFoundError(NotFoundError):
    """No such personal runtime in the caller's account (another account's looks the same)."""


class FailedPreconditionError(LatticeError):
    default_code = "FAILED_PRECONDITION"


class NoModelSatisfiesError(FailedPreconditionError):
    """Models match the expression, but none has what the request needs (vision, tools, JSON, context)."""


class AuthenticationError(LatticeError):
    """The credential is missing, unknown, expired or of the wrong kind."""

    default_code = "UNAUTHENTICATED"


class ApiKeyMissingError(AuthenticationError):
    """The call needs a credential and carried none."""


class ApiKeyInvalidError(AuthenticationError):
    """The API key is unknown or was revoked."""


class AccessTokenExpiredError(AuthenticationError):
    """The OAuth access token is past its `exp`."""


class AccessTokenInvalidError(AuthenticationError):
    """The OAuth access token's signature, issuer or audience is wrong."""


class BootstrapTokenUsedError(AuthenticationError):
    """The pairing token was already redeemed."""


class BootstrapTokenExpiredError(AuthenticationError):
    """The pairing token is past its TTL."""


class BootstrapTokenInvalidError(AuthenticationError):
    """The pairing token never existed."""


class PermissionDeniedError(LatticeError):
    default_code = "PERMISSION_DENIED"


class InsufficientScopesError(PermissionDeniedError):
    """The credential lacks the scope the call needs; `metadata["scope"]` names it."""


class RuntimeRevokedError(PermissionDeniedError):
    """The personal runtime was revoked: no chats, no tokens, its daemon refused."""


class RuntimeRepairedError(PermissionDeniedError):
    """The personal runtime was paired again: this daemon's credential is no longer valid."""


class ResourceExhaustedError(LatticeError):
    """Over a capacity or rate limit; `retry_delay` says when to come back."""

    default_code = "RESOURCE_EXHAUSTED"
    default_retryable = True


class QueueFullError(ResourceExhaustedError):
    """The model's (or runtime's) queue is full."""


class QueueTimeoutError(ResourceExhaustedError):
    """The request waited in the model's queue for as long as the gateway allows."""


class RateLimitedError(ResourceExhaustedError):
    """This caller started more chats a minute than allowed."""


class TooManyStreamsError(ResourceExhaustedError):
    """This caller has as many chats in flight as allowed."""


class UpstreamRateLimitedError(ResourceExhaustedError):
    """Every candidate backend was over its own rate limit."""


class UnavailableError(LatticeError):
    """The gateway, or the backend that would answer, cannot serve now."""

    default_code = "UNAVAILABLE"
    default_retryable = True


class BackendUnavailableError(UnavailableError):
    """The model is still loading, or every candidate's backend failed."""


class RuntimeUnreachableError(UnavailableError):
    """The personal runtime's daemon is not connected, or its relay dropped mid-answer."""


class ModelLoadFailedError(UnavailableError):
    """The in-process model could not be loaded."""

    default_retryable = False


class NoRoomToLoadError(UnavailableError):
    """Every resident model is busy, so the one asked for cannot be loaded yet."""


class UpstreamAuthFailedError(UnavailableError):
    """The gateway's credential for a proxied backend was refused."""

    default_retryable = False


class UpstreamModelNotFoundError(UnavailableError):
    """A proxied backend does not know the model it was configured with."""

    default_retryable = False


class UntrustedCertificateError(UnavailableError):
    """The gateway's TLS certificate is not one this client trusts (self-signed, an unknown authority,
    expired, another host's): no retry can make it pass. Raised by the SDK itself, not sent by the gateway."""

    default_retryable = False


class DeadlineExceededError(LatticeError):
    """The deadline passed before the work could finish (or start)."""

    default_code = "DEADLINE_EXCEEDED"


class StreamDurationExceededError(DeadlineExceededError):
    """A stream ran past the gateway's longest allowed duration."""


class InternalError(LatticeError):
    """The gateway failed; its log has the details."""

    default_code = "INTERNAL"


class BackendFailedError(InternalError):
    """The backend failed in a way the gateway could not classify."""


def _rebuild(kind: type[LatticeError], message: str, fields: dict[str, Any]) -> LatticeError:
    return kind(message, **fields)


REASONS: Mapping[str, type[LatticeError]] = {
    "CONTEXT_LENGTH_EXCEEDED": ContextLengthExceededError,
    "TOO_MANY_MESSAGES": TooManyMessagesError,
    "PROMPT_TOO_LARGE": PromptTooLargeError,
    "SWARM_LIMIT_EXCEEDED": SwarmLimitExceededError,
    "PROMPT_TOO_LONG_FOR_DURATION": PromptTooLongForDurationError,
    "CONFLICTING_CREDENTIALS": ConflictingCredentialsError,
    "UPSTREAM_REJECTED": UpstreamRejectedError,
    "MODEL_NOT_FOUND": ModelNotFoundError,
    "RUNTIME_NOT_FOUND": RuntimeNotFoundError,
    "NO_MODEL_SATISFIES": NoModelSatisfiesError,
    "API_KEY_MISSING": ApiKeyMissingError,
    "API_KEY_INVALID": ApiKeyInvalidError,
    "ACCESS_TOKEN_EXPIRED": AccessTokenExpiredError,
    "ACCESS_TOKEN_INVALID": AccessTokenInvalidError,
    "BOOTSTRAP_TOKEN_USED": BootstrapTokenUsedError,
    "BOOTSTRAP_TOKEN_EXPIRED": BootstrapTokenExpiredError,
    "BOOTSTRAP_TOKEN_INVALID": BootstrapTokenInvalidError,
    "INSUFFICIENT_SCOPES": InsufficientScopesError,
    "RUNTIME_REVOKED": RuntimeRevokedError,
    "RUNTIME_REPAIRED": RuntimeRepairedError,
    "QUEUE_FULL": QueueFullError,
    "QUEUE_TIMEOUT": QueueTimeoutError,
    "RATE_LIMITED": RateLimitedError,
    "TOO_MANY_STREAMS": TooManyStreamsError,
    "UPSTREAM_RATE_LIMITED": UpstreamRateLimitedError,
    "BACKEND_UNAVAILABLE": BackendUnavailableError,
    "RUNTIME_UNREACHABLE": RuntimeUnreachableError,
    "MODEL_LOAD_FAILED": ModelLoadFailedError,
    "NO_ROOM_TO_LOAD": NoRoomToLoadError,
    "UPSTREAM_AUTH_FAILED": UpstreamAuthFailedError,
    "UPSTREAM_MODEL_NOT_FOUND": UpstreamModelNotFoundError,
    "STREAM_DURATION_EXCEEDED": StreamDurationExceededError,
    "BACKEND_FAILED": BackendFailedError,
}
"""The reasons the gateway sends, each to its class."""

CODES: Mapping[str, type[LatticeError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NOT_FOUND": NotFoundError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "UNAVAILABLE": UnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "INTERNAL": InternalError,
}
"""The fallback for a reason not in REASONS: the class of its gRPC code."""


def error_class(reason: str | None, code: str) -> type[LatticeError]:
    """The class for `reason`, else for `code`, else LatticeError."""
    if reason is not None and reason in REASONS:
        return REASONS[reason]
    return CODES.get(code, LatticeError)


def make_error(
    code: str,
    message: str,
    *,
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
    retry_delay: float | None = None,
    domain: str = "",
) -> LatticeError:
    """The error for a status. A RESOURCE_EXHAUSTED without a reason is not the gateway's refusal
    (it always names one) but the transport's, a message over the size limit: not worth retrying."""
    kind = error_class(reason, code)
    retryable = False if (code == "RESOURCE_EXHAUSTED" and reason is None) else None
    return kind(
        message,
        reason=reason,
        code=code,
        metadata=metadata,
        retry_delay=retry_delay,
        domain=domain,
        retryable=retryable,
    )
