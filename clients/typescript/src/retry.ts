// Retries where they are safe: a call the gateway refused as RESOURCE_EXHAUSTED (its queue, a
// rate limit) or that found the backend UNAVAILABLE, before any token was produced. The gateway's
// RetryInfo delay is honoured (never cut short: a delay longer than `maxDelayMs` ends the retries);
// without one, exponential backoff with jitter. A stream that has yielded a token is never retried.
import { CancelledError, LatticeError } from "./errors.js";

export interface RetryAttempt {
  /** What the failed attempt threw. */
  error: LatticeError;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the SDK waits before the next attempt. */
  delayMs: number;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 means no retry). */
  maxAttempts?: number;
  /** The first backoff when the gateway sends no retry delay, doubling per attempt (default 250 ms). */
  initialDelayMs?: number;
  /** The longest wait before one retry (default 20 s). A gateway delay above it is not waited
   * for: the error is thrown. */
  maxDelayMs?: number;
  /** Called before each wait, e.g. to log or count retries. The retry waits for it to settle. */
  onRetry?: (attempt: RetryAttempt) => void | Promise<void>;
}

export type RetryPolicy = Required<Omit<RetryOptions, "onRetry">> & Pick<RetryOptions, "onRetry">;

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, initialDelayMs: 250, maxDelayMs: 20_000 };

/** The client's policy with a call's overrides; `false` on either turns retries off. */
export function retryPolicy(client: RetryOptions | false | undefined, call: RetryOptions | false | undefined): RetryPolicy | undefined {
  if (client === false || call === false) return undefined;
  const policy = { ...DEFAULT_RETRY, ...definedOnly(client ?? {}), ...definedOnly(call ?? {}) };
  if (!(policy.maxAttempts >= 1)) throw new RangeError(`retry.maxAttempts must be at least 1, got ${policy.maxAttempts}`);
  return policy;
}

function definedOnly(options: RetryOptions): RetryOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as RetryOptions;
}

/** How long to wait before attempt `attempt + 1`, or undefined when `error` must be thrown. */
export function retryDelay(policy: RetryPolicy | undefined, error: LatticeError, attempt: number): number | undefined {
  if (!policy || attempt >= policy.maxAttempts || !error.retryable) return undefined;
  if (error.retryDelayMs !== undefined) {
    if (error.retryDelayMs > policy.maxDelayMs) return undefined;
    // Up to 10% more than asked, so callers refused together do not all come back at once.
    return Math.min(policy.maxDelayMs, error.retryDelayMs * (1 + Math.random() * 0.1));
  }
  const backoff = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  return backoff / 2 + (Math.random() * backoff) / 2;
}

/** Waits `ms`, or rejects with a CancelledError as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = () =>
      new CancelledError({ message: "the call was aborted while waiting to retry", reason: "CANCELLED", code: "CANCELLED" });
    if (signal?.aborted) return reject(cancelled());
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
