// ComputeClient: chats with any model expression or a personal runtime, text completions,
// embeddings, resolution, and the personal-runtime records, on top of the generated Connect
// clients (src/gen, `make gen`).
import { createClient, type CallOptions as ConnectCallOptions, type Client, type Interceptor } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  chatRequestToProto,
  chatResponseFromProto,
  completeRequestToProto,
  completionEventFromProto,
  embeddingsFromProto,
  embedRequestToProto,
  modelFromProto,
  PERSONAL_PREFIX,
  resolutionFromProto,
  runtimeFromProto,
  streamEventFromProto,
  textCompletionFromProto,
} from "./convert.js";
import { ResourceExhaustedError, toLatticeError, type LatticeError } from "./errors.js";
import { ChatService } from "./gen/lattice/v1/chat_pb.js";
import { CompletionService } from "./gen/lattice/v1/completions_pb.js";
import { EmbeddingService } from "./gen/lattice/v1/embeddings_pb.js";
import { PersonalRuntimeService } from "./gen/lattice/v1/personal_runtime_pb.js";
import { ResolveService } from "./gen/lattice/v1/resolve_pb.js";
import { retryDelay, retryPolicy, sleep, type RetryOptions, type RetryPolicy } from "./retry.js";
import {
  createTransport,
  credentialInterceptor,
  DEFAULT_TRANSPORT,
  normalizeBaseUrl,
  type Credential,
  type TransportKind,
} from "./transport.js";
import type {
  BootstrapToken,
  ChatCompletion,
  ChatCompletionRequest,
  ChatStreamEvent,
  CompletionRequest,
  CompletionStreamEvent,
  CreatePersonalRuntimeRequest,
  EmbedRequest,
  Embeddings,
  Model,
  PersonalRuntime,
  PersonalRuntimeChatRequest,
  PersonalRuntimePage,
  Resolution,
  TextCompletion,
} from "./types.js";

export interface ComputeClientOptions {
  /** The gateway's gRPC address (`http://127.0.0.1:50051`, or `127.0.0.1:50051`) for `grpc`;
   * Envoy's URL (`http://127.0.0.1:8080`) for `grpc-web`. `https://` uses TLS. */
  baseUrl: string;
  /** Sent as `authorization: Bearer …` on every call; leave out only for an open local gateway. */
  credential?: Credential;
  /** `grpc` (HTTP/2, Node's default) or `grpc-web` (through Envoy; a browser's default). */
  transport?: TransportKind;
  /** For `https://` with `grpc`: the PEM of an authority to trust besides Node's own (a private CA,
   * or the gateway's self-signed certificate). `NODE_EXTRA_CA_CERTS` does the same for a whole process. */
  tlsCa?: string | Uint8Array;
  /** Retries for RESOURCE_EXHAUSTED / UNAVAILABLE before the first token; `false` turns them off. */
  retry?: RetryOptions | false;
  /** The deadline of each attempt of each call, unless the call sets its own. */
  timeoutMs?: number;
}

export interface CallOptions {
  /** Aborts the call (and any wait before a retry) with a CancelledError. */
  signal?: AbortSignal;
  /** This call's deadline, per attempt. */
  timeoutMs?: number;
  /** Overrides the client's retry options for this call; `false` turns retries off. */
  retry?: RetryOptions | false;
}

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** A typed client for a Lattice gateway. */
export class ComputeClient {
  readonly baseUrl: string;
  readonly transport: TransportKind;
  /** Create, list, get and revoke personal runtimes; mint their bootstrap tokens. */
  readonly personalRuntimes: PersonalRuntimes;
  readonly #credentialKind: Credential["kind"] | undefined;
  readonly #chat: Client<typeof ChatService>;
  readonly #completions: Client<typeof CompletionService>;
  readonly #embeddings: Client<typeof EmbeddingService>;
  readonly #resolve: Client<typeof ResolveService>;
  readonly #calls: Calls;

  constructor(options: ComputeClientOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.transport = options.transport ?? DEFAULT_TRANSPORT;
    this.#credentialKind = options.credential?.kind;
    const interceptors: Interceptor[] = options.credential ? [credentialInterceptor(options.credential)] : [];
    const transport = createTransport(this.transport, this.baseUrl, interceptors, options.tlsCa);
    this.#chat = createClient(ChatService, transport);
    this.#completions = createClient(CompletionService, transport);
    this.#embeddings = createClient(EmbeddingService, transport);
    this.#resolve = createClient(ResolveService, transport);
    this.#calls = new Calls(options.retry, options.timeoutMs);
    this.personalRuntimes = new PersonalRuntimes(createClient(PersonalRuntimeService, transport), this.#calls);
  }

  /** Every model the gateway serves. */
  async listModels(options?: CallOptions): Promise<Model[]> {
    const models: Model[] = [];
    let pageToken = "";
    do {
      const page = await this.#calls.unary(options, true, (o) => this.#resolve.listModels({ pageToken }, o));
      models.push(...page.models.map(modelFromProto));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return models;
  }

  /** Which model `model` picks for a request like `request` (default: a plain chat), and why. */
  async resolve(model: string, request?: PersonalRuntimeChatRequest, options?: CallOptions): Promise<Resolution> {
    const chat = request === undefined ? undefined : chatRequestToProto({ ...request, model });
    const response = await this.#calls.unary(options, true, (o) => this.#resolve.resolve({ model, request: chat }, o));
    const resolution = resolutionFromProto(response.resolution);
    if (!resolution) throw new TypeError("the gateway answered Resolve without a resolution");
    return resolution;
  }

  /** A whole answer from the model `request.model` names (an id, an expression, a personal runtime). */
  async chatComplete(request: ChatCompletionRequest, options?: CallOptions): Promise<ChatCompletion> {
    const proto = chatRequestToProto(request);
    const response = await this.#calls.unary(options, true, (o) => this.#chat.chat(proto, o));
    return chatResponseFromProto(response);
  }

  /** The answer as it is generated: `queued` (only while waiting for a slot), `delta`s, one `done`.
   * Retries happen only before the first `delta`; breaking out of the loop cancels the call. */
  chatStream(request: ChatCompletionRequest, options?: CallOptions): AsyncIterable<ChatStreamEvent> {
    const proto = chatRequestToProto(request);
    return this.#calls.stream(options, (o) => this.#chat.streamChat(proto, o), streamEventFromProto);
  }

  /** The continuation of `request.prompt`, sent to the model raw (no chat template), from a model
   * with the `completions` capability. */
  async complete(request: CompletionRequest, options?: CallOptions): Promise<TextCompletion> {
    const proto = completeRequestToProto(request);
    const response = await this.#calls.unary(options, true, (o) => this.#completions.complete(proto, o));
    return textCompletionFromProto(response);
  }

  /** `complete`, as it is generated: `queued` (only while waiting for a slot), `delta`s of text, one
   * `done`. Retried and cancelled as `chatStream` is. */
  completeStream(request: CompletionRequest, options?: CallOptions): AsyncIterable<CompletionStreamEvent> {
    const proto = completeRequestToProto(request);
    return this.#calls.stream(options, (o) => this.#completions.streamComplete(proto, o), completionEventFromProto);
  }

  /** A vector per input (a text, or token ids), in the order given, from a model with the
   * `embeddings` capability. */
  async embed(request: EmbedRequest, options?: CallOptions): Promise<Embeddings> {
    const proto = embedRequestToProto(request);
    const response = await this.#calls.unary(options, true, (o) => this.#embeddings.embed(proto, o));
    return embeddingsFromProto(response);
  }

  /** The caller's personal runtimes whose daemon is connected now. */
  async listReachablePersonalRuntimes(options?: CallOptions): Promise<PersonalRuntime[]> {
    return (await this.personalRuntimes.list(undefined, options)).filter((r) => r.status === "reachable");
  }

  /** A whole answer from a personal runtime (a record, or its `lat_…` id). */
  chatCompleteForPersonalRuntime(
    runtime: PersonalRuntime | string,
    request: PersonalRuntimeChatRequest,
    options?: CallOptions,
  ): Promise<ChatCompletion> {
    return this.chatComplete({ ...request, model: runtimeModel(runtime) }, options);
  }

  /** A personal runtime's answer as it is generated. */
  chatStreamForPersonalRuntime(
    runtime: PersonalRuntime | string,
    request: PersonalRuntimeChatRequest,
    options?: CallOptions,
  ): AsyncIterable<ChatStreamEvent> {
    return this.chatStream({ ...request, model: runtimeModel(runtime) }, options);
  }

  toJSON(): { baseUrl: string; transport: TransportKind; credential: string } {
    return { baseUrl: this.baseUrl, transport: this.transport, credential: this.#describeCredential() };
  }

  toString(): string {
    return `ComputeClient(${this.baseUrl}, ${this.transport}, credential: ${this.#describeCredential()})`;
  }

  [INSPECT](): string {
    return this.toString();
  }

  #describeCredential(): string {
    return this.#credentialKind ? `${this.#credentialKind} (hidden)` : "none";
  }
}

/** The personal runtimes of the caller's account (`client.personalRuntimes`). */
export class PersonalRuntimes {
  readonly #service: Client<typeof PersonalRuntimeService>;
  readonly #calls: Calls;

  /** @internal Made by ComputeClient. */
  constructor(service: Client<typeof PersonalRuntimeService>, calls: Calls) {
    this.#service = service;
    this.#calls = calls;
  }

  /** A new runtime record, `unpaired` until a daemon redeems a bootstrap token. Not retried on
   * UNAVAILABLE: the record may have been made before the connection failed. */
  async create(request: CreatePersonalRuntimeRequest, options?: CallOptions): Promise<PersonalRuntime> {
    const response = await this.#calls.unary(options, false, (o) => this.#service.createPersonalRuntime(request, o));
    return runtimeFromProto(response.runtime);
  }

  /** All of the caller's runtimes, newest first, with their live status (every page). */
  async list(query?: { pageSize?: number }, options?: CallOptions): Promise<PersonalRuntime[]> {
    const runtimes: PersonalRuntime[] = [];
    let pageToken = "";
    do {
      const page = await this.listPage({ pageSize: query?.pageSize, pageToken }, options);
      runtimes.push(...page.runtimes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return runtimes;
  }

  /** One page of the caller's runtimes (`pageSize` default 50, at most 500). */
  async listPage(query: { pageSize?: number | undefined; pageToken?: string }, options?: CallOptions): Promise<PersonalRuntimePage> {
    const request = { pageSize: query.pageSize ?? 0, pageToken: query.pageToken ?? "" };
    const response = await this.#calls.unary(options, true, (o) => this.#service.listPersonalRuntimes(request, o));
    return { runtimes: response.runtimes.map(runtimeFromProto), nextPageToken: response.nextPageToken };
  }

  async get(runtime: PersonalRuntime | string, options?: CallOptions): Promise<PersonalRuntime> {
    const latticeId = runtimeId(runtime);
    const response = await this.#calls.unary(options, true, (o) => this.#service.getPersonalRuntime({ latticeId }, o));
    return runtimeFromProto(response.runtime);
  }

  /** Revokes the runtime: its relay stream is closed, its credential and tokens refused. Returns the
   * record, now `revoked`. */
  async revoke(runtime: PersonalRuntime | string, options?: CallOptions): Promise<PersonalRuntime> {
    const latticeId = runtimeId(runtime);
    const response = await this.#calls.unary(options, true, (o) => this.#service.deletePersonalRuntime({ latticeId }, o));
    return runtimeFromProto(response.runtime);
  }

  /** A one-time token that pairs a daemon with the runtime (`ttlSeconds` 60-3600, default 600). */
  async createBootstrapToken(
    runtime: PersonalRuntime | string,
    request?: { ttlSeconds?: number },
    options?: CallOptions,
  ): Promise<BootstrapToken> {
    const latticeId = runtimeId(runtime);
    const ttlSeconds = request?.ttlSeconds ?? 0;
    const response = await this.#calls.unary(options, false, (o) =>
      this.#service.createBootstrapToken({ latticeId, ttlSeconds }, o),
    );
    return {
      latticeId: response.latticeId,
      bootstrapToken: response.bootstrapToken,
      expiresAt: response.expiresAt ? timestampDate(response.expiresAt) : undefined,
      command: response.command,
    };
  }
}

function runtimeId(runtime: PersonalRuntime | string | undefined): string {
  const id = typeof runtime === "string" ? runtime : runtime?.latticeId;
  if (!id) throw new TypeError("no personal runtime given (a record or its lat_… id)");
  return id.startsWith(PERSONAL_PREFIX) ? id.slice(PERSONAL_PREFIX.length) : id;
}

function runtimeModel(runtime: PersonalRuntime | string | undefined): string {
  return PERSONAL_PREFIX + runtimeId(runtime);
}

/** @internal One call with the client's deadline and retry policy. */
class Calls {
  readonly #retry: RetryOptions | false | undefined;
  readonly #timeoutMs: number | undefined;

  constructor(retry: RetryOptions | false | undefined, timeoutMs: number | undefined) {
    retryPolicy(retry, undefined); // checks the options now rather than at the first failure
    this.#retry = retry;
    this.#timeoutMs = timeoutMs;
  }

  #connectOptions(options: CallOptions | undefined): ConnectCallOptions {
    return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? this.#timeoutMs };
  }

  /** `idempotent`: whether UNAVAILABLE may be retried (a call that changes something is retried
   * only when the gateway refused it before doing anything: RESOURCE_EXHAUSTED). */
  async unary<T>(options: CallOptions | undefined, idempotent: boolean, call: (o: ConnectCallOptions) => Promise<T>): Promise<T> {
    const policy = retryPolicy(this.#retry, options?.retry);
    for (let attempt = 1; ; attempt++) {
      try {
        return await call(this.#connectOptions(options));
      } catch (thrown) {
        const error = toLatticeError(thrown);
        const delayMs = idempotent || error instanceof ResourceExhaustedError ? retryDelay(policy, error, attempt) : undefined;
        if (delayMs === undefined) throw error;
        await wait(policy, error, attempt, delayMs, options?.signal);
      }
    }
  }

  /** A server stream, each message `convert`ed to an event (undefined: skipped), retried while it
   * has yielded nothing but `queued` events. */
  async *stream<M, E extends { type: string }>(
    options: CallOptions | undefined,
    open: (o: ConnectCallOptions) => AsyncIterable<M>,
    convert: (message: M) => E | undefined,
  ): AsyncGenerator<E, void, undefined> {
    const policy = retryPolicy(this.#retry, options?.retry);
    for (let attempt = 1; ; attempt++) {
      let started = false;
      try {
        for await (const message of open(this.#connectOptions(options))) {
          const event = convert(message);
          if (event === undefined) continue;
          if (event.type !== "queued") started = true;
          yield event;
        }
        return;
      } catch (thrown) {
        const error = toLatticeError(thrown);
        const delayMs = started ? undefined : retryDelay(policy, error, attempt);
        if (delayMs === undefined) throw error;
        await wait(policy, error, attempt, delayMs, options?.signal);
      }
    }
  }
}

async function wait(
  policy: RetryPolicy | undefined,
  error: LatticeError,
  attempt: number,
  delayMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  await policy?.onRetry?.({ error, attempt, delayMs });
  await sleep(delayMs, signal);
}
