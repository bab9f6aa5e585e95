// The SDK's records ⇄ the generated protobuf messages (src/gen, `make gen`).
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationMs, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ResponseFormat_Type,
  ToolChoice_Mode,
  type ChatRequestSchema,
  type ChatResponse,
  type QueueStatus,
  type StreamChatResponse,
} from "./gen/lattice/v1/chat_pb.js";
import {
  CandidateVerdict as CandidateVerdictProto,
  FinishReason as FinishReasonProto,
  LatencyTier as LatencyTierProto,
  Role as RoleProto,
  type ContentPartSchema,
  type MessageSchema,
  type Resolution as ResolutionProto,
  type ToolCall as ToolCallProto,
  type Usage as UsageProto,
} from "./gen/lattice/v1/common_pb.js";
import type { CompleteRequestSchema, CompleteResponse, StreamCompleteResponse } from "./gen/lattice/v1/completions_pb.js";
import type { EmbedRequestSchema, EmbedResponse } from "./gen/lattice/v1/embeddings_pb.js";
import type { PersonalRuntime as PersonalRuntimeProto } from "./gen/lattice/v1/personal_runtime_pb.js";
import { Capability as CapabilityProto, type Model as ModelProto } from "./gen/lattice/v1/resolve_pb.js";
import type {
  Capability,
  CandidateVerdict,
  ChatCompletion,
  ChatCompletionRequest,
  ChatMessage,
  ChatStreamEvent,
  CompletionRequest,
  CompletionStreamEvent,
  DoneEvent,
  EmbedRequest,
  Embeddings,
  FinishReason,
  GenerationOptions,
  LatencyTier,
  Model,
  PersonalRuntime,
  QueuedEvent,
  Resolution,
  ResponseFormat,
  TextCompletion,
  ToolCall,
  ToolChoice,
  Usage,
} from "./types.js";

/** The model expression that reaches a personal runtime. */
export const PERSONAL_PREFIX = "lattice:personal:";

type ChatRequestInit = MessageInitShape<typeof ChatRequestSchema>;

const ROLES: Record<ChatMessage["role"], RoleProto> = {
  system: RoleProto.SYSTEM,
  user: RoleProto.USER,
  assistant: RoleProto.ASSISTANT,
  tool: RoleProto.TOOL,
};

const TIERS: Record<LatencyTier, LatencyTierProto> = {
  fast: LatencyTierProto.FAST,
  standard: LatencyTierProto.STANDARD,
  slow: LatencyTierProto.SLOW,
};

// The generated enums, by value (TypeScript's numeric enums map values back to their names).
const FINISH_REASONS: Record<number, string> = FinishReasonProto;
const CANDIDATE_VERDICTS: Record<number, string> = CandidateVerdictProto;
const CAPABILITIES: Record<number, string> = CapabilityProto;
const LATENCY_TIERS: Record<number, string> = LatencyTierProto;

/** A proto enum value as the SDK's lower-case string (`FinishReason.TOOL_CALLS` → `tool_calls`). */
function enumName<T extends string>(names: Record<number, string>, value: number): T {
  return (names[value]?.toLowerCase() ?? "unspecified") as T;
}

/** The fields ChatRequest and CompleteRequest share, under the same names. */
function generationToProto(request: GenerationOptions) {
  return {
    model: request.model ?? "",
    maxTokens: request.maxTokens,
    temperature: request.temperature,
    topP: request.topP,
    stop: request.stop ?? [],
    seed: request.seed === undefined ? undefined : BigInt(request.seed),
    user: request.user ?? "",
    latencyTier: request.latencyTier === undefined ? LatencyTierProto.UNSPECIFIED : TIERS[request.latencyTier],
    allowEscalation: request.allowEscalation ?? false,
    priority: request.priority ?? 0,
  };
}

export function chatRequestToProto(request: ChatCompletionRequest): ChatRequestInit {
  if (!Array.isArray(request.messages)) throw new TypeError("a chat request needs `messages`, an array");
  return {
    ...generationToProto(request),
    messages: request.messages.map(messageToProto),
    tools: (request.tools ?? []).map((tool) => ({
      type: tool.type ?? "function",
      function: {
        name: tool.function.name,
        description: tool.function.description ?? "",
        parameters: tool.function.parameters,
        strict: tool.function.strict ?? false,
      },
    })),
    toolChoice: request.toolChoice === undefined ? undefined : toolChoiceToProto(request.toolChoice),
    responseFormat: request.responseFormat === undefined ? undefined : responseFormatToProto(request.responseFormat),
  };
}

export function completeRequestToProto(request: CompletionRequest): MessageInitShape<typeof CompleteRequestSchema> {
  // A list of prompts (which OpenAI's legacy API takes) would otherwise go out as one joined string:
  // protobuf-es encodes ["a", "b"] as "a,b" without a word.
  if (typeof request.prompt !== "string") throw new TypeError("a completion request needs `prompt`, one string (one prompt per call)");
  return { ...generationToProto(request), prompt: request.prompt };
}

export function embedRequestToProto(request: EmbedRequest): MessageInitShape<typeof EmbedRequestSchema> {
  if (!Array.isArray(request.inputs)) throw new TypeError("an embed request needs `inputs`, an array of strings or token-id arrays");
  return {
    model: request.model ?? "",
    inputs: request.inputs.map((input) => {
      if (typeof input === "string") return { input: { case: "text" as const, value: input } };
      if (Array.isArray(input)) return { input: { case: "tokens" as const, value: { ids: input } } };
      throw new TypeError(`an embed input is a string or an array of token ids, not ${JSON.stringify(input)}`);
    }),
    dimensions: request.dimensions,
    user: request.user ?? "",
    priority: request.priority ?? 0,
  };
}

function messageToProto(message: ChatMessage): MessageInitShape<typeof MessageSchema> {
  const role = ROLES[message.role];
  if (role === undefined) throw new TypeError(`unknown role ${JSON.stringify(message.role)}`);
  const parts = typeof message.content === "string" ? [{ type: "text" as const, text: message.content }] : message.content;
  return {
    role,
    content: parts.map(
      (part): MessageInitShape<typeof ContentPartSchema> =>
        part.type === "text"
          ? { part: { case: "text", value: part.text } }
          : { part: { case: "imageUrl", value: { url: part.url, detail: part.detail ?? "" } } },
    ),
    name: message.name ?? "",
    toolCalls: (message.toolCalls ?? []).map((call) => ({
      id: call.id,
      type: call.type,
      function: { name: call.function.name, arguments: call.function.arguments },
    })),
    toolCallId: message.toolCallId ?? "",
  };
}

function toolChoiceToProto(choice: ToolChoice): ChatRequestInit["toolChoice"] {
  if (typeof choice === "object") return { choice: { case: "functionName", value: choice.function } };
  const modes = { none: ToolChoice_Mode.NONE, auto: ToolChoice_Mode.AUTO, required: ToolChoice_Mode.REQUIRED };
  return { choice: { case: "mode", value: modes[choice] } };
}

function responseFormatToProto(format: ResponseFormat): ChatRequestInit["responseFormat"] {
  if (format.type === "json_schema") return { type: ResponseFormat_Type.JSON_SCHEMA, jsonSchema: format.jsonSchema };
  return { type: format.type === "json_object" ? ResponseFormat_Type.JSON_OBJECT : ResponseFormat_Type.TEXT };
}

function date(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp ? timestampDate(timestamp) : undefined;
}

function usage(proto: UsageProto | undefined): Usage {
  const promptTokens = proto?.promptTokens ?? 0;
  const completionTokens = proto?.completionTokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: proto?.totalTokens || promptTokens + completionTokens };
}

export function resolutionFromProto(proto: ResolutionProto | undefined): Resolution | undefined {
  if (!proto) return undefined;
  return {
    expression: proto.expression,
    model: proto.model,
    backend: proto.backend,
    candidates: proto.candidates.map((c) => ({
      model: c.model,
      verdict: enumName<CandidateVerdict>(CANDIDATE_VERDICTS, c.verdict),
      detail: c.detail,
    })),
    escalated: proto.escalated,
  };
}

function toolCall(proto: ToolCallProto): ToolCall {
  return {
    id: proto.id,
    type: "function",
    function: { name: proto.function?.name ?? "", arguments: proto.function?.arguments ?? "" },
  };
}

function text(parts: { part: { case: string | undefined; value?: unknown } }[]): string {
  return parts.map((p) => (p.part.case === "text" ? String(p.part.value) : "")).join("");
}

export function chatResponseFromProto(proto: ChatResponse): ChatCompletion {
  return {
    id: proto.id,
    model: proto.model,
    created: date(proto.createTime),
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: text(proto.message?.content ?? []),
          toolCalls: (proto.message?.toolCalls ?? []).map(toolCall),
        },
        finishReason: enumName<FinishReason>(FINISH_REASONS, proto.finishReason),
        stopSequence: proto.stopSequence,
      },
    ],
    usage: usage(proto.usage),
    resolution: resolutionFromProto(proto.resolution),
  };
}

export function textCompletionFromProto(proto: CompleteResponse): TextCompletion {
  return {
    id: proto.id,
    model: proto.model,
    created: date(proto.createTime),
    text: proto.text,
    finishReason: enumName<FinishReason>(FINISH_REASONS, proto.finishReason),
    usage: usage(proto.usage),
    resolution: resolutionFromProto(proto.resolution),
  };
}

export function embeddingsFromProto(proto: EmbedResponse): Embeddings {
  return {
    model: proto.model,
    vectors: proto.embeddings.map((e) => [...e.values]),
    usage: usage(proto.usage),
    resolution: resolutionFromProto(proto.resolution),
  };
}

function queuedFromProto(id: string, model: string, queued: QueueStatus): QueuedEvent {
  return {
    type: "queued",
    id,
    model: queued.model || model,
    position: queued.position,
    estimatedWaitMs: queued.estimatedWait ? durationMs(queued.estimatedWait) : 0,
  };
}

function doneFromProto(
  id: string,
  model: string,
  done: { finishReason: FinishReasonProto; usage?: UsageProto | undefined; resolution?: ResolutionProto | undefined },
): DoneEvent {
  return {
    type: "done",
    id,
    model,
    finishReason: enumName<FinishReason>(FINISH_REASONS, done.finishReason),
    usage: usage(done.usage),
    resolution: resolutionFromProto(done.resolution),
  };
}

/** One chat stream message as the SDK's event; undefined for a message with no event this SDK knows. */
export function streamEventFromProto(proto: StreamChatResponse): ChatStreamEvent | undefined {
  const { id, model } = proto;
  const event = proto.event;
  switch (event.case) {
    case "queued":
      return queuedFromProto(id, model, event.value);
    case "delta":
      return {
        type: "delta",
        id,
        model,
        content: event.value.content,
        toolCalls: event.value.toolCalls.map((c) => ({
          index: c.index,
          id: c.id,
          functionName: c.functionName,
          functionArguments: c.functionArguments,
        })),
      };
    case "done":
      return { ...doneFromProto(id, model, event.value), stopSequence: event.value.stopSequence };
    default:
      return undefined;
  }
}

/** One text completion stream message as the SDK's event; undefined for one this SDK does not know. */
export function completionEventFromProto(proto: StreamCompleteResponse): CompletionStreamEvent | undefined {
  const { id, model } = proto;
  const event = proto.event;
  switch (event.case) {
    case "queued":
      return queuedFromProto(id, model, event.value);
    case "text":
      return { type: "delta", id, model, text: event.value };
    case "done":
      return doneFromProto(id, model, event.value);
    default:
      return undefined;
  }
}

export function modelFromProto(proto: ModelProto): Model {
  return {
    id: proto.id,
    aliases: [...proto.aliases],
    backend: proto.backend,
    contextWindow: proto.contextWindow,
    capabilities: proto.capabilities.map((c) => enumName<Capability>(CAPABILITIES, c)),
    roles: [...proto.roles],
    ownedBy: proto.ownedBy,
    latencyTier: enumName<LatencyTier | "unspecified">(LATENCY_TIERS, proto.latencyTier),
    costPerMillionTokens: proto.costPerMillionTokens,
    available: proto.available,
    defaultMaxTokens: proto.defaultMaxTokens,
  };
}

export function runtimeFromProto(proto: PersonalRuntimeProto | undefined): PersonalRuntime {
  if (!proto) throw new TypeError("the gateway answered without a runtime record");
  return {
    latticeId: proto.latticeId,
    accountId: proto.accountId,
    displayName: proto.displayName,
    executionBackend: proto.executionBackend,
    status: proto.status,
    createdAt: date(proto.createdAt),
    updatedAt: date(proto.updatedAt),
    model: PERSONAL_PREFIX + proto.latticeId,
  };
}
