// @lattice/compute: a typed client for a Lattice gateway (README.md beside package.json).
export { ComputeClient, PersonalRuntimes, type CallOptions, type ComputeClientOptions } from "./client.js";
export type { Credential, TransportKind } from "./transport.js";
export type { RetryAttempt, RetryOptions } from "./retry.js";
export { DEFAULT_RETRY } from "./retry.js";
export * from "./errors.js";
export type * from "./types.js";
export { PERSONAL_PREFIX } from "./convert.js";
