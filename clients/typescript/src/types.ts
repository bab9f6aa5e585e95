// The SDK's own records: plain objects in TypeScript's idiom (camelCase, string unions, Date,
// number), converted from the generated protobuf messages in convert.ts. The chat shapes mirror
// OpenAI's (`choices[0].message.content`) so code written against it reads the same.
import type { JsonObject } from "@bufbuild/protobuf";

export type Role = "system" | "user" | "assistant" | "tool";

/** One part of a message's content: text, or an image by URL (`data:` URLs included). */
export type ContentPart = { type: "text"; text: string } | { type: "image"; url: string; detail?: string };

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  /** Text, or parts (text and images). */
  content: string | ContentPart[];
  name?: string;
  /** On an assistant message: the calls it made. */
  toolCalls?: ToolCall[];
  /** On a tool message: the call it answers. */
  toolCallId?: string;
}

export interface ToolDefinition {
  type?: "function";
  function: { name: string; description?: string; parameters?: JsonObject; strict?: boolean };
}

export type ToolChoice = "none" | "auto" | "required" | { function: string };

export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; jsonSchema: JsonObject };

export type LatencyTier = "fast" | "standard" | "slow";

/** What a chat and a text completion both take besides their input. */
export interface GenerationOptions {
  /** A model id or expression: `role:coder`, `a,b`, `*coder*`, `lattice:personal:<id>` (chats
   * only), capability terms (`completions`); empty or absent means the gateway's default. */
  model?: string;
  maxTokens?: number;
  /** In [0, 2]; 0 is greedy. */
  temperature?: number;
  topP?: number;
  /** Up to four strings that end the answer (not part of it). */
  stop?: string[];
  seed?: number;
  /** An end-user id for abuse tracking, passed to upstreams as is. */
  user?: string;
  /** Prefer models of this tier; excludes none. */
  latencyTier?: LatencyTier;
  /** Allow the configured escalation target when nothing else can serve the request. */
  allowEscalation?: boolean;
  /** In [-10, 10]; higher is admitted first when the model is busy. */
  priority?: number;
}

export interface ChatCompletionRequest extends GenerationOptions {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
}

/** A text completion: `prompt` goes to the model raw, with no chat template. The model needs the
 * `completions` capability (every llama.cpp model, OpenAI-compatible chat upstreams). */
export interface CompletionRequest extends GenerationOptions {
  /** The text to continue: one prompt per call. */
  prompt: string;
}

/** Texts, or token ids of the model's own vocabulary: one vector each, in the order given. The model
 * needs the `embeddings` capability (every llama.cpp model, OpenAI-compatible embedding models). */
export interface EmbedRequest {
  /** A model id or expression (`embeddings`, a capability term, picks one that can); empty or
   * absent means the gateway's default. */
  model?: string;
  inputs: (string | number[])[];
  /** Shorten the vectors: passed to upstreams that can; refused by the llama.cpp engine. */
  dimensions?: number;
  /** An end-user id for abuse tracking, passed to upstreams as is. */
  user?: string;
  /** In [-10, 10]; higher is admitted first when the model is busy. */
  priority?: number;
}

/** A chat request for a named personal runtime: the runtime is the model. */
export type PersonalRuntimeChatRequest = Omit<ChatCompletionRequest, "model">;

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "unspecified";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export type CandidateVerdict =
  | "chosen"
  | "outranked"
  | "missing_capability"
  | "context_too_small"
  | "unavailable"
  | "unhealthy"
  | "over_capacity"
  | "failed"
  | "unspecified";

/** Why the gateway picked the model it picked, and why it passed over the others. */
export interface Resolution {
  expression: string;
  model: string;
  /** `mlx`, `openai`, `anthropic`, `relay` (a personal runtime), … */
  backend: string;
  candidates: { model: string; verdict: CandidateVerdict; detail: string }[];
  escalated: boolean;
}

export interface AssistantMessage {
  role: "assistant";
  content: string;
  toolCalls: ToolCall[];
}

export interface ChatChoice {
  index: number;
  message: AssistantMessage;
  finishReason: FinishReason;
  /** The request's stop string that ended the answer, when one did and the backend can tell; else "". */
  stopSequence: string;
}

export interface ChatCompletion {
  id: string;
  /** The model that answered. */
  model: string;
  created: Date | undefined;
  /** Always exactly one choice. */
  choices: ChatChoice[];
  usage: Usage;
  resolution: Resolution | undefined;
}

export interface ToolCallDelta {
  index: number;
  /** Set on a call's first fragment. */
  id: string;
  /** Set on a call's first fragment. */
  functionName: string;
  /** The next piece of the arguments' JSON text. */
  functionArguments: string;
}

/** A stream's request waits for a slot on a busy model (only before its first delta). */
export interface QueuedEvent {
  type: "queued";
  id: string;
  /** The model it waits for. */
  model: string;
  /** 1 means next in line. */
  position: number;
  estimatedWaitMs: number;
}

/** The last event of a stream that ended well. */
export interface DoneEvent {
  type: "done";
  id: string;
  model: string;
  finishReason: FinishReason;
  usage: Usage;
  resolution: Resolution | undefined;
}

/** The last event of a chat stream that ended well. */
export interface ChatDoneEvent extends DoneEvent {
  /** The request's stop string that ended the answer, when one did and the backend can tell; else "". */
  stopSequence: string;
}

/** What a chat stream yields: `queued` (only before any delta), then `delta`s, then one `done`. */
export type ChatStreamEvent =
  | QueuedEvent
  | { type: "delta"; id: string; model: string; content: string; toolCalls: ToolCallDelta[] }
  | ChatDoneEvent;

/** A whole text completion: the prompt's continuation, without the prompt. */
export interface TextCompletion {
  /** `cmpl-…` */
  id: string;
  /** The model that answered. */
  model: string;
  created: Date | undefined;
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  resolution: Resolution | undefined;
}

/** What a text completion stream yields: `queued` (only before any delta), then `delta`s of text,
 * then one `done`. */
export type CompletionStreamEvent = QueuedEvent | { type: "delta"; id: string; model: string; text: string } | DoneEvent;

/** The vectors of `embed`: one per input, in the order given. */
export interface Embeddings {
  /** The model that embedded. */
  model: string;
  vectors: number[][];
  /** `promptTokens` (and `totalTokens`): the inputs' tokens. */
  usage: Usage;
  resolution: Resolution | undefined;
}

export type Capability = "chat" | "vision" | "tools" | "json_mode" | "long_context" | "logprobs" | "embeddings" | "completions" | "unspecified";

export interface Model {
  id: string;
  aliases: string[];
  backend: string;
  contextWindow: number;
  capabilities: Capability[];
  roles: string[];
  ownedBy: string;
  latencyTier: LatencyTier | "unspecified";
  costPerMillionTokens: number;
  available: boolean;
  /** The most tokens an answer runs to when the call sets no `maxTokens` (it then ends with `length`). */
  defaultMaxTokens: number;
}

/** `local-model` (a local OpenAI-compatible server or the embedded model) or `assistant-runtime`. */
export type ExecutionBackend = "local-model" | "assistant-runtime" | (string & {});

/** The record overlaid with the live relay. */
export type RuntimeStatus = "unpaired" | "reachable" | "offline" | "revoked" | (string & {});

/** A user's own machine, paired with the gateway as a place to run work. */
export interface PersonalRuntime {
  /** `lat_…` */
  latticeId: string;
  accountId: string;
  displayName: string;
  executionBackend: ExecutionBackend;
  status: RuntimeStatus;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  /** The model expression that chats with it: `lattice:personal:<latticeId>`. */
  model: string;
}

export interface CreatePersonalRuntimeRequest {
  displayName: string;
  executionBackend: ExecutionBackend;
}

export interface PersonalRuntimePage {
  runtimes: PersonalRuntime[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/** A one-time token that pairs a daemon with a runtime (`lattice-ctl relay connect`). */
export interface BootstrapToken {
  latticeId: string;
  /** `plrt_v1_…`: single use, shown once. */
  bootstrapToken: string;
  expiresAt: Date | undefined;
  /** The pairing command, ready to paste. */
  command: string;
}
