// The SDK against live gateways, as an app developer uses it. tests/clients/test_typescript_sdk.py starts
// everything (two gateways with their own databases, an echo provider for the daemons, Envoy),
// makes the keys and runs this file with node's test runner, passing where things are in SDK_TEST_*
// variables. This file pairs its daemons itself, running `lattice-ctl` as the walkthrough does.
//
//   npm run build && node --test dist/test/   (only with the SDK_TEST_* variables set)
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { inspect, promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import {
  ApiKeyInvalidError,
  ComputeClient,
  InsufficientScopesError,
  LatticeError,
  ModelNotFoundError,
  NoModelSatisfiesError,
  NotFoundError,
  PermissionDeniedError,
  QueueFullError,
  ResourceExhaustedError,
  RuntimeNotFoundError,
  RuntimeRevokedError,
  RuntimeUnreachableError,
  UnavailableError,
  UntrustedCertificateError,
  toLatticeError,
  type ChatStreamEvent,
  type Credential,
  type PersonalRuntime,
  type RetryAttempt,
} from "../index.js";

const run = promisify(execFile);
const WAIT_MS = 60_000;
const MANAGE_SCOPE = "lattice:compute:personal_runtime:manage";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through tests/clients/test_typescript_sdk.py`);
  return value;
}

const live = process.env.SDK_TEST_GRPC_URL !== undefined;
const skip = live ? false : "no live gateway: tests/clients/test_typescript_sdk.py sets SDK_TEST_*";

function client(credential: Credential | undefined, overrides: Partial<ConstructorParameters<typeof ComputeClient>[0]> = {}) {
  return new ComputeClient({
    baseUrl: env("SDK_TEST_GRPC_URL"),
    ...(credential ? { credential } : {}),
    timeoutMs: 60_000,
    ...overrides,
  });
}

const apiKey = (name: string): Credential => ({ kind: "apiKey", apiKey: env(name) });

/** What a call threw, which must be a LatticeError. */
async function failure(call: () => Promise<unknown>): Promise<LatticeError> {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof LatticeError, `expected a LatticeError, got ${inspect(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

async function collect<E>(stream: AsyncIterable<E>): Promise<E[]> {
  const events: E[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((sum, x, i) => sum + x * (b[i] ?? Number.NaN), 0);
  return dot / (Math.hypot(...a) * Math.hypot(...b));
}

function text(events: ChatStreamEvent[]): string {
  return events.map((e) => (e.type === "delta" ? e.content : "")).join("");
}

/** Polls until `condition` holds; fails (never hangs) after a generous bound. */
async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`still waiting, after ${WAIT_MS / 1000} s, for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One machine's `lattice-ctl`, as the walkthrough runs it. */
class Daemon {
  constructor(readonly home: string) {}

  async ctl(...args: string[]): Promise<string> {
    // The daemon reads LATTICE_* settings only: it gets none of this test's variables.
    const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SDK_TEST_")));
    const { stdout } = await run(env("SDK_TEST_LATTICE_CTL"), args, {
      env: { ...childEnv, LATTICE_CTL_HOME: this.home },
      timeout: 120_000,
    });
    return stdout;
  }

  /** Redeems the token, then starts the daemon on the echo provider. */
  async pair(restUrl: string, bootstrapToken: string): Promise<void> {
    await mkdir(this.home, { recursive: true });
    const provider = ["--provider-url", env("SDK_TEST_PROVIDER_URL")];
    await this.ctl("relay", "connect", "--gateway", restUrl, "--bootstrap-token", bootstrapToken, ...provider);
    assert.match(await this.ctl("daemon", "start", "--max-backoff-seconds", "1", ...provider), /daemon started/);
  }

  async pid(): Promise<number> {
    return Number((await readFile(path.join(this.home, "daemon.pid"), "utf8")).trim());
  }

  async stop(): Promise<void> {
    await this.ctl("daemon", "stop").catch(() => undefined);
  }
}

async function reachable(compute: ComputeClient, runtime: PersonalRuntime): Promise<void> {
  await waitFor(`${runtime.latticeId} to be reachable`, async () =>
    (await compute.listReachablePersonalRuntimes()).some((r) => r.latticeId === runtime.latticeId),
  );
}

describe("errors decoded from google.rpc.Status details", () => {
  // The only tests without a gateway: reasons no live call can produce on demand.
  const wire = (code: Code, reason: string | undefined, retryMs?: number) =>
    new ConnectError("refused", code, undefined, [
      ...(reason ? [{ desc: ErrorInfoSchema, value: { reason, domain: "lattice", metadata: { model: "m" } } }] : []),
      ...(retryMs === undefined ? [] : [{ desc: RetryInfoSchema, value: { retryDelay: durationFromMs(retryMs) } }]),
    ]);

  test("a known reason gets its class, metadata and retry delay", () => {
    const error = toLatticeError(wire(Code.ResourceExhausted, "QUEUE_FULL", 1500));
    assert.ok(error instanceof QueueFullError && error instanceof ResourceExhaustedError);
    assert.deepEqual([error.reason, error.code, error.retryDelayMs, error.retryable], ["QUEUE_FULL", "RESOURCE_EXHAUSTED", 1500, true]);
    assert.deepEqual(error.metadata, { model: "m" });
    assert.equal(error.message, "refused");
  });

  test("an unknown reason falls back to its status code's family, keeping the reason", () => {
    const error = toLatticeError(wire(Code.Unavailable, "SOMETHING_NEW"));
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.constructor, UnavailableError);
    assert.equal(error.reason, "SOMETHING_NEW");
    assert.ok(error.retryable);
  });

  test("RESOURCE_EXHAUSTED without the gateway's ErrorInfo (a message over gRPC's size limit) is not retryable", () => {
    const error = toLatticeError(wire(Code.ResourceExhausted, undefined));
    assert.ok(error instanceof ResourceExhaustedError);
    assert.deepEqual([error.reason, error.fromGateway, error.retryable], ["RESOURCE_EXHAUSTED", false, false]);
  });
});

describe("the seed walkthrough, in code", { skip }, () => {
  let compute: ComputeClient;
  let runtime: PersonalRuntime;
  const daemon = new Daemon(path.join(process.env.SDK_TEST_CTL_HOMES ?? "", "walkthrough"));

  before(() => {
    compute = client(apiKey("SDK_TEST_KEY"));
  });
  after(() => daemon.stop());

  test("create a runtime and mint a bootstrap token", async () => {
    runtime = await compute.personalRuntimes.create({ displayName: "Mac Studio in the office", executionBackend: "local-model" });
    assert.match(runtime.latticeId, /^lat_/);
    assert.deepEqual(
      [runtime.accountId, runtime.displayName, runtime.executionBackend, runtime.status],
      ["acct_sdk", "Mac Studio in the office", "local-model", "unpaired"],
    );
    assert.equal(runtime.model, `lattice:personal:${runtime.latticeId}`);
    assert.ok(runtime.createdAt instanceof Date && runtime.createdAt.getTime() <= Date.now());

    const token = await compute.personalRuntimes.createBootstrapToken(runtime, { ttlSeconds: 600 });
    assert.equal(token.latticeId, runtime.latticeId);
    assert.match(token.bootstrapToken, /^plrt_v1_/);
    assert.ok(token.expiresAt && token.expiresAt.getTime() > Date.now());
    assert.ok(token.command.includes(token.bootstrapToken));

    await daemon.pair(env("SDK_TEST_REST_URL"), token.bootstrapToken);
    await reachable(compute, runtime);
  });

  test("the issue's example, as written", async () => {
    const baseUrl = env("SDK_TEST_GRPC_URL");
    const apiKey = env("SDK_TEST_KEY");
    const compute = new ComputeClient({ baseUrl, credential: { kind: "apiKey", apiKey } });
    const [runtime] = await compute.listReachablePersonalRuntimes();
    const completion = await compute.chatCompleteForPersonalRuntime(runtime, {
      messages: [{ role: "user", content: "Summarize this document." }],
    });
    // The echo provider answers with the prompt.
    assert.equal(completion.choices[0]?.message.content, "Summarize this document.");
    assert.equal(completion.choices[0]?.finishReason, "stop");
    assert.equal(completion.resolution?.backend, "relay");
  });

  test("list, get, and an OAuth access token for the same account sees the same runtime", async () => {
    assert.deepEqual((await compute.personalRuntimes.list()).map((r) => r.latticeId), [runtime.latticeId]);
    assert.equal((await compute.personalRuntimes.get(runtime.latticeId)).status, "reachable");
    const page = await compute.personalRuntimes.listPage({ pageSize: 1 });
    assert.deepEqual([page.runtimes.length, page.nextPageToken], [1, ""]);

    // An OAuth subject is an account of its own (`oauth:<sub>`), never a key's `acct_…`, even of the same name.
    const user = client({ kind: "oauth", accessToken: () => env("SDK_TEST_ACCESS_TOKEN") });
    assert.deepEqual(await user.listReachablePersonalRuntimes(), []);
  });

  test("stream a chat through the runtime", async () => {
    const events = await collect(
      compute.chatStreamForPersonalRuntime(runtime, { messages: [{ role: "user", content: "stream these five words" }] }),
    );
    assert.equal(text(events), "stream these five words");
    const done = events.at(-1);
    assert.ok(done?.type === "done", inspect(events));
    assert.equal(done.finishReason, "stop");
    assert.equal(done.model, runtime.model);
    assert.equal(done.usage.completionTokens, 4);
    assert.ok(events.slice(0, -1).every((e) => e.type === "delta"));
  });

  test("over grpc-web through Envoy, as a browser does", async () => {
    const web = client(apiKey("SDK_TEST_KEY"), { baseUrl: env("SDK_TEST_GRPC_WEB_URL"), transport: "grpc-web" });
    const [found] = await web.listReachablePersonalRuntimes();
    assert.equal(found?.latticeId, runtime.latticeId);
    const completion = await web.chatCompleteForPersonalRuntime(runtime, { messages: [{ role: "user", content: "through Envoy" }] });
    assert.equal(completion.choices[0]?.message.content, "through Envoy");
    // The error details survive Envoy's grpc-web framing.
    const missing = await failure(() => web.personalRuntimes.get("lat_doesnotexist"));
    assert.ok(missing instanceof RuntimeNotFoundError, inspect(missing));
  });

  test("another account cannot see it", async () => {
    const other = client(apiKey("SDK_TEST_OTHER_KEY"));
    const error = await failure(() => other.personalRuntimes.get(runtime));
    assert.ok(error instanceof RuntimeNotFoundError);
    assert.deepEqual([error.reason, error.code], ["RUNTIME_NOT_FOUND", "NOT_FOUND"]);
    assert.deepEqual(await other.listReachablePersonalRuntimes(), []);
    const chat = await failure(() => other.chatCompleteForPersonalRuntime(runtime, { messages: [{ role: "user", content: "hi" }] }));
    assert.ok(chat instanceof RuntimeNotFoundError, inspect(chat));
  });

  test("revoke", async () => {
    const revoked = await compute.personalRuntimes.revoke(runtime);
    assert.deepEqual([revoked.latticeId, revoked.status], [runtime.latticeId, "revoked"]);
    assert.deepEqual(await compute.listReachablePersonalRuntimes(), []);
    const error = await failure(() =>
      compute.chatCompleteForPersonalRuntime(runtime, { messages: [{ role: "user", content: "still there?" }] }),
    );
    assert.ok(error instanceof RuntimeRevokedError && error instanceof PermissionDeniedError, inspect(error));
    assert.equal(error.retryable, false);
  });
});

describe("any model expression", { skip }, () => {
  const model = process.env.SDK_TEST_MODEL ?? "";

  test("listModels and resolve explain the choice", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const models = await compute.listModels();
    assert.ok(models.some((m) => m.id === model && m.capabilities.includes("chat")), inspect(models));
    const resolution = await compute.resolve("auto");
    assert.deepEqual([resolution.expression, resolution.model], ["auto", model]);
    assert.ok(resolution.candidates.some((c) => c.model === model && c.verdict === "chosen"), inspect(resolution));
  });

  test("chatComplete and chatStream on the gateway's own model", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const request = { model: "default", messages: [{ role: "user" as const, content: "What is the capital of France? Answer in one word." }], temperature: 0, maxTokens: 12 };
    const completion = await compute.chatComplete(request);
    assert.equal(completion.model, model);
    assert.match(completion.choices[0]?.message.content ?? "", /Paris/);
    assert.ok(completion.usage.completionTokens > 0 && completion.usage.totalTokens > completion.usage.completionTokens);
    const events = await collect(compute.chatStream(request));
    assert.equal(text(events), completion.choices[0]?.message.content);
  });
});

describe("text completions and embeddings on the gateway's own model", { skip }, () => {
  const model = process.env.SDK_TEST_MODEL ?? "";
  const prompt = "The capital of France is";

  test("embed: two paraphrases are closer than an unrelated sentence", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const inputs = [
      "The weather is lovely and sunny today.",
      "Today it is sunny and the weather is nice.",
      "The invoice must be paid within thirty days.",
    ];
    const answer = await compute.embed({ model, inputs });
    const [a, b, c] = answer.vectors;
    assert.ok(a && b && c && answer.vectors.length === 3, inspect(answer));
    assert.ok(cosine(a, b) > cosine(a, c) && cosine(a, b) > cosine(b, c));
    assert.equal(answer.model, model);
    assert.equal(answer.resolution?.model, model);
    assert.ok(answer.usage.promptTokens > 0, inspect(answer.usage));
    // Token ids of the model's vocabulary embed too, into vectors as wide.
    const [tokens] = (await compute.embed({ model, inputs: [[1, 2, 3]] })).vectors;
    assert.equal(tokens?.length, a.length);
  });

  test("complete a raw prompt, whole and streamed", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const request = { model, prompt, maxTokens: 8, temperature: 0 };
    const whole = await compute.complete(request);
    assert.equal(whole.model, model);
    assert.match(whole.id, /^cmpl-/);
    assert.ok(whole.text.trim() && ["stop", "length"].includes(whole.finishReason), inspect(whole));
    assert.ok(whole.usage.completionTokens > 0 && whole.usage.completionTokens <= 8, inspect(whole.usage));
    assert.ok(whole.usage.promptTokens < 10, "the prompt goes raw: no chat template around it");
    assert.ok(whole.created instanceof Date && whole.resolution?.model === model);

    const events = await collect(compute.completeStream(request));
    const text = events.map((e) => (e.type === "delta" ? e.text : "")).join("");
    assert.equal(text, whole.text); // greedy: the same continuation, streamed
    const done = events.at(-1);
    assert.ok(done?.type === "done", inspect(events));
    assert.deepEqual([done.finishReason, done.usage.completionTokens], [whole.finishReason, whole.usage.completionTokens]);
    assert.equal(done.resolution?.model, model);
    assert.ok(events.slice(0, -1).every((e) => e.type === "delta"), inspect(events));
  });

  test("an unknown model is a ModelNotFoundError with its reason, for each call", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const unknown = "no-such-model";
    for (const call of [
      () => compute.embed({ model: unknown, inputs: ["hello"] }),
      () => compute.complete({ model: unknown, prompt, maxTokens: 4 }),
      () => collect(compute.completeStream({ model: unknown, prompt, maxTokens: 4 })),
    ]) {
      const error = await failure(call);
      assert.ok(error instanceof ModelNotFoundError && error instanceof NotFoundError, inspect(error));
      assert.deepEqual([error.reason, error.code, error.metadata.model, error.retryable], ["MODEL_NOT_FOUND", "NOT_FOUND", unknown, false]);
    }
  });
});

describe("requests the SDK refuses before any call", () => {
  // Nothing listens on port 9: a call that went out would fail UNAVAILABLE, not with these TypeErrors.
  const compute = new ComputeClient({ baseUrl: "http://127.0.0.1:9", retry: false });

  test("a prompt that is not one string", async () => {
    const prompts = ["one", "two"] as unknown as string;
    assert.throws(() => compute.completeStream({ prompt: prompts }), /needs `prompt`, one string/);
    await assert.rejects(compute.complete({ prompt: prompts }), /needs `prompt`, one string/);
  });

  test("inputs that are not texts or token ids", async () => {
    await assert.rejects(compute.embed({ inputs: "hello" as unknown as string[] }), /needs `inputs`, an array/);
    await assert.rejects(compute.embed({ inputs: [{ text: "hi" } as unknown as string] }), /a string or an array of token ids/);
  });
});

describe("over TLS, through Envoy serving the test's self-signed certificate", { skip }, () => {
  const model = process.env.SDK_TEST_MODEL ?? "";

  test("with tlsCa, the gateway's authority is trusted and a chat streams", async () => {
    const ca = await readFile(env("SDK_TEST_TLS_CA"));
    const compute = client(apiKey("SDK_TEST_KEY"), { baseUrl: env("SDK_TEST_TLS_URL"), tlsCa: ca });
    assert.ok((await compute.listModels()).some((m) => m.id === model));
    const events = await collect(compute.chatStream({ messages: [{ role: "user", content: "Hi" }], maxTokens: 4 }));
    const done = events.at(-1);
    assert.ok(done?.type === "done" && done.usage.completionTokens > 0, inspect(events));
  });

  test("without it, the certificate is refused at once, and never retried", async () => {
    const retries: RetryAttempt[] = [];
    const compute = client(apiKey("SDK_TEST_KEY"), {
      baseUrl: env("SDK_TEST_TLS_URL"),
      retry: { maxAttempts: 5, onRetry: (a: RetryAttempt) => void retries.push(a) },
    });
    const error = await failure(() => compute.listModels());
    assert.ok(error instanceof UntrustedCertificateError && error instanceof UnavailableError, inspect(error));
    assert.deepEqual([error.code, error.retryable, retries.length], ["UNAVAILABLE", false, 0]);
    assert.match(error.message, /does not trust: self-signed certificate.*tlsCa/);
  });

  test("tlsCa is for the grpc transport only", () => {
    assert.throws(() => client(undefined, { transport: "grpc-web", tlsCa: "pem" }), /tlsCa applies to transport "grpc" only/);
  });
});

describe("structured errors", { skip }, () => {
  test("a key without the manage scope cannot create runtimes", async () => {
    const chatOnly = client(apiKey("SDK_TEST_INFERENCE_KEY"));
    const error = await failure(() => chatOnly.personalRuntimes.create({ displayName: "x", executionBackend: "local-model" }));
    assert.ok(error instanceof InsufficientScopesError && error instanceof PermissionDeniedError, inspect(error));
    assert.deepEqual([error.reason, error.code, error.metadata.scope], ["INSUFFICIENT_SCOPES", "PERMISSION_DENIED", MANAGE_SCOPE]);
  });

  test("a runtime whose daemon is not connected is unreachable, after bounded retries", async () => {
    // Another account than the walkthrough's, whose runtime list that test checks.
    const compute = client(apiKey("SDK_TEST_OTHER_KEY"));
    const idle = await compute.personalRuntimes.create({ displayName: "never paired", executionBackend: "local-model" });
    const request = { messages: [{ role: "user" as const, content: "anyone there?" }] };

    const once = await failure(() => compute.chatCompleteForPersonalRuntime(idle, request, { retry: false }));
    assert.ok(once instanceof RuntimeUnreachableError && once instanceof UnavailableError, inspect(once));
    assert.deepEqual([once.reason, once.code, once.retryable], ["RUNTIME_UNREACHABLE", "UNAVAILABLE", true]);

    const retries: RetryAttempt[] = [];
    const retry = { maxAttempts: 3, initialDelayMs: 10, onRetry: (a: RetryAttempt) => void retries.push(a) };
    const last = await failure(() => collect(compute.chatStreamForPersonalRuntime(idle, request, { retry })));
    assert.ok(last instanceof RuntimeUnreachableError);
    assert.deepEqual(retries.map((r) => [r.attempt, r.error.reason]), [[1, "RUNTIME_UNREACHABLE"], [2, "RUNTIME_UNREACHABLE"]]);
  });

  test("not found: a runtime id, a model expression", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const runtime = await failure(() => compute.personalRuntimes.get("lat_doesnotexist"));
    assert.ok(runtime instanceof RuntimeNotFoundError, inspect(runtime));
    const model = await failure(() => compute.chatComplete({ model: "no-such-model-*", messages: [{ role: "user", content: "hi" }] }));
    assert.ok(model instanceof ModelNotFoundError, inspect(model));
    assert.equal(model.retryable, false);
  });

  test("no model satisfies an image for a text-only model", async () => {
    const compute = client(apiKey("SDK_TEST_KEY"));
    const image = { type: "image" as const, url: "data:image/png;base64,iVBORw0KGgo=" };
    const error = await failure(() =>
      compute.chatComplete({ model: "default", messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, image] }] }),
    );
    assert.ok(error instanceof NoModelSatisfiesError, inspect(error));
    assert.equal(error.code, "FAILED_PRECONDITION");
  });

  test("a wrong key is refused, and the key shows up nowhere", async () => {
    const secret = "sk_0000000000000000_not-a-real-secret-zzzzzzzz";
    const compute = client({ kind: "apiKey", apiKey: secret });
    const error = await failure(() => compute.listModels());
    assert.ok(error instanceof ApiKeyInvalidError, inspect(error));
    for (const shown of [inspect(compute, { depth: 10, showHidden: true }), JSON.stringify(compute), String(compute), inspect(error, { depth: 10 }), JSON.stringify(error)]) {
      assert.ok(!shown.includes(secret) && !shown.includes("not-a-real-secret"), shown);
    }
    assert.match(String(compute), /apiKey \(hidden\)/);
  });
});

describe("retries on a gateway with tiny admission caps", { skip }, () => {
  let compute: ComputeClient;
  let runtime: PersonalRuntime;
  const daemon = new Daemon(path.join(process.env.SDK_TEST_CTL_HOMES ?? "", "busy"));
  const user = (content: string) => ({ messages: [{ role: "user" as const, content }] });

  before(async () => {
    compute = client(apiKey("SDK_TEST_TINY_KEY"), { baseUrl: env("SDK_TEST_TINY_GRPC_URL") });
    runtime = await compute.personalRuntimes.create({ displayName: "one at a time", executionBackend: "local-model" });
    const token = await compute.personalRuntimes.createBootstrapToken(runtime);
    await daemon.pair(env("SDK_TEST_TINY_REST_URL"), token.bootstrapToken);
    await reachable(compute, runtime);
  });
  after(() => daemon.stop());

  test("QUEUE_FULL is retried after the gateway's delay, and the retry succeeds", async () => {
    // The runtime runs one chat at a time and queues none: a slow stream holds its only slot.
    const busy = compute.chatStreamForPersonalRuntime(runtime, user("slow: one two three four five six"))[Symbol.asyncIterator]();
    const first = await busy.next();
    assert.ok(!first.done && first.value.type === "delta", inspect(first));

    const refused = await failure(() => compute.chatCompleteForPersonalRuntime(runtime, user("not now"), { retry: false }));
    assert.ok(refused instanceof QueueFullError, inspect(refused));
    assert.ok(refused.retryable && refused.retryDelayMs !== undefined && refused.retryDelayMs > 0, inspect(refused));

    // With retries, the refusal is waited out: the slow stream is drained while the SDK waits.
    const retries: RetryAttempt[] = [];
    const onRetry = async (attempt: RetryAttempt) => {
      retries.push(attempt);
      while (!(await busy.next()).done);
    };
    const retry = { maxAttempts: 5, onRetry };
    const completion = await compute.chatCompleteForPersonalRuntime(runtime, user("my turn"), { retry });
    assert.equal(completion.choices[0]?.message.content, "my turn");
    assert.ok(retries.length >= 1, "no retry happened");
    for (const { error, delayMs } of retries) {
      assert.ok(error instanceof QueueFullError, inspect(error));
      assert.ok(error.retryDelayMs !== undefined && delayMs >= error.retryDelayMs, inspect({ error, delayMs }));
    }
  });

  test("a stream that has yielded a token is never retried", async () => {
    const retries: RetryAttempt[] = [];
    const stream = compute.chatStreamForPersonalRuntime(runtime, user("slow: one two three four five six"), {
      retry: { initialDelayMs: 10, onRetry: (a) => void retries.push(a) },
    });
    const seen: ChatStreamEvent[] = [];
    const error = await failure(async () => {
      for await (const event of stream) {
        seen.push(event);
        // The daemon dies mid-answer: the relay drops and the stream ends UNAVAILABLE (retryable).
        if (seen.length === 1) process.kill(await daemon.pid(), "SIGKILL");
      }
    });
    assert.ok(error instanceof RuntimeUnreachableError && error.retryable, inspect(error));
    assert.ok(seen.length >= 1 && seen.every((e) => e.type === "delta"));
    assert.deepEqual(retries, []);
  });
});
