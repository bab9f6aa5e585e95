// One error class per reason the gateway sends, so app code branches with `instanceof` (or on
// `reason`) instead of parsing messages. The gateway answers every refusal with a
// google.rpc.Status whose details hold an ErrorInfo (`domain: "lattice"`, a stable `reason`,
// `metadata` such as `field`, `scope` or `model`) and, when a retry makes sense, a RetryInfo.
//
//   LatticeError                          code (gRPC)          reasons
//   ├── InvalidArgumentError              INVALID_ARGUMENT     INVALID_ARGUMENT, CONTEXT_LENGTH_EXCEEDED, TOO_MANY_MESSAGES,
//   │                                                          PROMPT_TOO_LARGE, SWARM_LIMIT_EXCEEDED, UPSTREAM_REJECTED,
//   │                                                          PROMPT_TOO_LONG_FOR_DURATION, CONFLICTING_CREDENTIALS
//   ├── NotFoundError                     NOT_FOUND            MODEL_NOT_FOUND, RUNTIME_NOT_FOUND
//   ├── FailedPreconditionError           FAILED_PRECONDITION  NO_MODEL_SATISFIES
//   ├── UnauthenticatedError              UNAUTHENTICATED      API_KEY_*, ACCESS_TOKEN_*, BOOTSTRAP_TOKEN_*, DAEMON_CREDENTIAL_INVALID
//   ├── PermissionDeniedError             PERMISSION_DENIED    INSUFFICIENT_SCOPES, RUNTIME_REVOKED, RUNTIME_REPAIRED, DAEMON_ONLY
//   ├── ResourceExhaustedError            RESOURCE_EXHAUSTED   QUEUE_FULL, QUEUE_TIMEOUT, RATE_LIMITED, TOO_MANY_STREAMS, UPSTREAM_RATE_LIMITED
//   ├── DeadlineExceededError             DEADLINE_EXCEEDED    DEADLINE_EXCEEDED, STREAM_DURATION_EXCEEDED
//   ├── UnavailableError                  UNAVAILABLE          BACKEND_UNAVAILABLE, RUNTIME_UNREACHABLE, MODEL_LOAD_FAILED, NO_ROOM_TO_LOAD,
//   │                                                          UPSTREAM_AUTH_FAILED, UPSTREAM_MODEL_NOT_FOUND, RUNTIME_NOT_PAIRED
//   │                                                          (and UntrustedCertificateError: the gateway's TLS certificate)
//   ├── InternalError                     INTERNAL             INTERNAL, BACKEND_FAILED, RELAY_SEAL_INVALID
//   └── CancelledError                    CANCELLED            (the caller aborted the call)
//
// A known reason always gets its class, whatever code it came with (RUNTIME_REVOKED is
// PERMISSION_DENIED on a chat, UNAUTHENTICATED at a token's redemption: `code` tells which). A
// reason this SDK does not know yet becomes its code's family class (a new RESOURCE_EXHAUSTED
// reason is still a ResourceExhaustedError); an unknown code, a bare LatticeError. Errors that did
// not come from the gateway (connection refused, a deadline passed, the caller aborted) carry their
// code's name as the reason and `fromGateway: false`.
import { Code, ConnectError } from "@connectrpc/connect";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** gRPC status code names, as the README's error table and `google.rpc.Code` spell them. */
export type StatusCode =
  | "OK"
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

const STATUS_CODES: Record<Code, StatusCode> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** The ErrorInfo domain of the gateway's own errors. */
export const ERROR_DOMAIN = "lattice";

export interface LatticeErrorInit {
  message: string;
  reason: string;
  code: StatusCode;
  metadata?: Readonly<Record<string, string>>;
  retryDelayMs?: number | undefined;
  /** Whether the gateway sent an ErrorInfo of its own domain (false: a transport or proxy error). */
  fromGateway?: boolean;
  cause?: unknown;
}

/** The root of every error the SDK throws for a failed call. */
export class LatticeError extends Error {
  /** The stable machine-readable reason: ErrorInfo.reason, else the status code's name. */
  readonly reason: string;
  /** The gRPC status code's name. */
  readonly code: StatusCode;
  /** ErrorInfo.metadata: `field` (a bad request field), `scope` (the missing scope), `model`, … */
  readonly metadata: Readonly<Record<string, string>>;
  /** RetryInfo.retry_delay in milliseconds, when the gateway says when to try again. */
  readonly retryDelayMs: number | undefined;
  /** True when the gateway itself refused the call with one of its reasons. */
  readonly fromGateway: boolean;

  constructor(init: LatticeErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.reason = init.reason;
    this.code = init.code;
    this.metadata = Object.freeze({ ...(init.metadata ?? {}) });
    this.retryDelayMs = init.retryDelayMs;
    this.fromGateway = init.fromGateway ?? false;
  }

  /** Whether trying the same call again later may succeed (the SDK's retries use this). */
  get retryable(): boolean {
    return false;
  }

  /** For structured logs: everything but the cause (whose transport details are not the app's). */
  toJSON(): Record<string, unknown> {
    const { name, message, reason, code, metadata, retryDelayMs, retryable, fromGateway } = this;
    return { name, message, reason, code, metadata, retryDelayMs, retryable, fromGateway };
  }
}

// ---- families, by status code ----

export class InvalidArgumentError extends LatticeError {}
export class NotFoundError extends LatticeError {}
export class FailedPreconditionError extends LatticeError {}
export class UnauthenticatedError extends LatticeError {}
export class PermissionDeniedError extends LatticeError {}
export class DeadlineExceededError extends LatticeError {}
export class InternalError extends LatticeError {}
/** The call was cancelled: by the caller's AbortSignal, or the stream was cancelled under it. */
export class CancelledError extends LatticeError {}

/** Over a capacity or rate limit. Retryable when it is the gateway's own refusal (a gRPC message
 * over the size limit is RESOURCE_EXHAUSTED too, without an ErrorInfo: retrying would not help). */
export class ResourceExhaustedError extends LatticeError {
  override get retryable(): boolean {
    return this.fromGateway;
  }
}

/** The backend, the runtime or the gateway itself could not be reached. Retryable unless its
 * reason says the cause is configuration (see the subclasses that override it). */
export class UnavailableError extends LatticeError {
  override get retryable(): boolean {
    return true;
  }
}

// ---- one class per reason ----

/** `metadata.field` names the offending request field. */
export class ContextLengthExceededError extends InvalidArgumentError {}
export class TooManyMessagesError extends InvalidArgumentError {}
export class PromptTooLargeError extends InvalidArgumentError {}
/** The prompt would take longer to read, at the model's measured prompt rate, than a chat may run. */
export class PromptTooLongForDurationError extends InvalidArgumentError {}
/** The call carried two different credentials (`x-api-key` and another Bearer): send one. */
export class ConflictingCredentialsError extends InvalidArgumentError {}
/** `metadata.limit` names it: `max_agents`, `max_rounds`, `max_total_tokens`. */
export class SwarmLimitExceededError extends InvalidArgumentError {}
/** An upstream refused the request itself (its 4xx). */
export class UpstreamRejectedError extends InvalidArgumentError {}

/** Nothing matches the model expression. */
export class ModelNotFoundError extends NotFoundError {}
/** No such personal runtime in the caller's account (another account's looks the same). */
export class RuntimeNotFoundError extends NotFoundError {}

/** Models match, but none has what the request needs (vision, tools, JSON mode, context). */
export class NoModelSatisfiesError extends FailedPreconditionError {}

export class ApiKeyMissingError extends UnauthenticatedError {}
export class ApiKeyInvalidError extends UnauthenticatedError {}
export class AccessTokenExpiredError extends UnauthenticatedError {}
export class AccessTokenInvalidError extends UnauthenticatedError {}
export class BootstrapTokenUsedError extends UnauthenticatedError {}
export class BootstrapTokenExpiredError extends UnauthenticatedError {}
export class BootstrapTokenInvalidError extends UnauthenticatedError {}
export class DaemonCredentialInvalidError extends UnauthenticatedError {}

/** The credential lacks the scope the call needs: `metadata.scope` names it. */
export class InsufficientScopesError extends PermissionDeniedError {}
/** The personal runtime was revoked: no chats, no tokens, its daemon refused. */
export class RuntimeRevokedError extends PermissionDeniedError {}
/** The personal runtime was paired again: this daemon's credential no longer counts. */
export class RuntimeRepairedError extends PermissionDeniedError {}
export class DaemonOnlyError extends PermissionDeniedError {}

/** The model's queue is full; `retryDelayMs` is the gateway's estimate of when a slot frees. */
export class QueueFullError extends ResourceExhaustedError {}
/** The wait in the model's queue ran out. */
export class QueueTimeoutError extends ResourceExhaustedError {}
/** This caller started chats faster than its rate allows. */
export class RateLimitedError extends ResourceExhaustedError {}
/** This caller has as many streams open as it may. */
export class TooManyStreamsError extends ResourceExhaustedError {}
/** Every candidate upstream was over its own limits. */
export class UpstreamRateLimitedError extends ResourceExhaustedError {}

export class StreamDurationExceededError extends DeadlineExceededError {}

export class BackendUnavailableError extends UnavailableError {}
/** The personal runtime's daemon is not connected, or its relay dropped mid-answer. */
export class RuntimeUnreachableError extends UnavailableError {}
export class RuntimeNotPairedError extends UnavailableError {}
export class NoRoomToLoadError extends UnavailableError {}
export class ModelLoadFailedError extends UnavailableError {
  override get retryable(): boolean {
    return false;
  }
}
export class UpstreamAuthFailedError extends UnavailableError {
  override get retryable(): boolean {
    return false;
  }
}
export class UpstreamModelNotFoundError extends UnavailableError {
  override get retryable(): boolean {
    return false;
  }
}
/** The gateway's TLS certificate is not one this client trusts (self-signed, an unknown authority,
 * expired, another host's): no retry can make it pass. Trust its authority with `tlsCa`. */
export class UntrustedCertificateError extends UnavailableError {
  override get retryable(): boolean {
    return false;
  }
}

export class BackendFailedError extends InternalError {}
export class RelaySealInvalidError extends InternalError {}

type ErrorClass = new (init: LatticeErrorInit) => LatticeError;

/** Every reason the gateway sends, with its class. */
export const ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = Object.freeze({
  INVALID_ARGUMENT: InvalidArgumentError,
  CONTEXT_LENGTH_EXCEEDED: ContextLengthExceededError,
  TOO_MANY_MESSAGES: TooManyMessagesError,
  PROMPT_TOO_LARGE: PromptTooLargeError,
  PROMPT_TOO_LONG_FOR_DURATION: PromptTooLongForDurationError,
  CONFLICTING_CREDENTIALS: ConflictingCredentialsError,
  SWARM_LIMIT_EXCEEDED: SwarmLimitExceededError,
  UPSTREAM_REJECTED: UpstreamRejectedError,
  NOT_FOUND: NotFoundError,
  MODEL_NOT_FOUND: ModelNotFoundError,
  RUNTIME_NOT_FOUND: RuntimeNotFoundError,
  NO_MODEL_SATISFIES: NoModelSatisfiesError,
  API_KEY_MISSING: ApiKeyMissingError,
  API_KEY_INVALID: ApiKeyInvalidError,
  ACCESS_TOKEN_EXPIRED: AccessTokenExpiredError,
  ACCESS_TOKEN_INVALID: AccessTokenInvalidError,
  BOOTSTRAP_TOKEN_USED: BootstrapTokenUsedError,
  BOOTSTRAP_TOKEN_EXPIRED: BootstrapTokenExpiredError,
  BOOTSTRAP_TOKEN_INVALID: BootstrapTokenInvalidError,
  DAEMON_CREDENTIAL_INVALID: DaemonCredentialInvalidError,
  PERMISSION_DENIED: PermissionDeniedError,
  INSUFFICIENT_SCOPES: InsufficientScopesError,
  RUNTIME_REVOKED: RuntimeRevokedError,
  RUNTIME_REPAIRED: RuntimeRepairedError,
  DAEMON_ONLY: DaemonOnlyError,
  QUEUE_FULL: QueueFullError,
  QUEUE_TIMEOUT: QueueTimeoutError,
  RATE_LIMITED: RateLimitedError,
  TOO_MANY_STREAMS: TooManyStreamsError,
  UPSTREAM_RATE_LIMITED: UpstreamRateLimitedError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  STREAM_DURATION_EXCEEDED: StreamDurationExceededError,
  BACKEND_UNAVAILABLE: BackendUnavailableError,
  RUNTIME_UNREACHABLE: RuntimeUnreachableError,
  RUNTIME_NOT_PAIRED: RuntimeNotPairedError,
  MODEL_LOAD_FAILED: ModelLoadFailedError,
  NO_ROOM_TO_LOAD: NoRoomToLoadError,
  UPSTREAM_AUTH_FAILED: UpstreamAuthFailedError,
  UPSTREAM_MODEL_NOT_FOUND: UpstreamModelNotFoundError,
  INTERNAL: InternalError,
  BACKEND_FAILED: BackendFailedError,
  RELAY_SEAL_INVALID: RelaySealInvalidError,
});

const FAMILIES: Partial<Record<StatusCode, ErrorClass>> = {
  CANCELLED: CancelledError,
  INVALID_ARGUMENT: InvalidArgumentError,
  OUT_OF_RANGE: InvalidArgumentError,
  NOT_FOUND: NotFoundError,
  FAILED_PRECONDITION: FailedPreconditionError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
  RESOURCE_EXHAUSTED: ResourceExhaustedError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  UNAVAILABLE: UnavailableError,
  INTERNAL: InternalError,
};

/** The LatticeError for anything a call threw: a ConnectError from the wire (its ErrorInfo and
 * RetryInfo decoded), or anything else (wrapped as UNKNOWN). A LatticeError is returned as is. */
export function toLatticeError(thrown: unknown): LatticeError {
  if (thrown instanceof LatticeError) return thrown;
  const error = ConnectError.from(thrown);
  if (TLS_VERIFY_FAILURES.has(nodeErrorCode(error.cause) ?? "")) {
    const message =
      `the gateway presented a certificate this client does not trust: ${error.rawMessage} ` +
      "(pass tlsCa, or set NODE_EXTRA_CA_CERTS, to trust its authority)";
    return new UntrustedCertificateError({ message, reason: "UNAVAILABLE", code: "UNAVAILABLE", cause: error });
  }
  const code = STATUS_CODES[error.code] ?? "UNKNOWN";
  const info = error.findDetails(ErrorInfoSchema).find((i) => i.domain === ERROR_DOMAIN);
  const retry = error.findDetails(RetryInfoSchema)[0];
  const reason = info?.reason || code;
  const known = info ? ERROR_CLASSES[reason] : undefined;
  const Class = known ?? FAMILIES[code] ?? LatticeError;
  return new Class({
    message: error.rawMessage,
    reason,
    code,
    metadata: info?.metadata ?? {},
    retryDelayMs: retry?.retryDelay ? durationMs(retry.retryDelay) : undefined,
    fromGateway: info !== undefined,
    cause: error,
  });
}

// Node's codes for a certificate it would not accept (connect-node reports them as INTERNAL).
const TLS_VERIFY_FAILURES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REVOKED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function nodeErrorCode(cause: unknown): string | undefined {
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}
