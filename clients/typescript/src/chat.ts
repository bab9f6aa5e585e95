// What both examples share: stream one chat with the generated client and print it.
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { ChatService } from "./gen/lattice/v1/chat_pb.js";
import { FinishReason, Role } from "./gen/lattice/v1/common_pb.js";
import { ResolveService } from "./gen/lattice/v1/resolve_pb.js";

export interface Options {
  /** gRPC `host:port` (grpc.ts) or Envoy's base URL (grpc-web.ts). */
  address: string;
  prompt: string;
  model: string;
  temperature: number;
}

/** Reads `[--address A] [--model M] [--temperature T] [prompt words…]`. */
export function parseArgs(argv: string[], defaultAddress: string): Options {
  const options: Options = {
    address: defaultAddress,
    prompt: "",
    model: "",
    temperature: 0,
  };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === "--address") options.address = value();
    else if (arg === "--model") options.model = value();
    else if (arg === "--temperature") options.temperature = Number(value());
    else words.push(arg);
  }
  options.prompt = words.join(" ") || "What is the capital of France? Answer in one word.";
  return options;
}

/** Sends the gateway's API key, when LATTICE_API_KEY is set, as `x-api-key` on every call. */
export function apiKeyInterceptors(): Interceptor[] {
  const key = process.env.LATTICE_API_KEY;
  if (!key) return [];
  return [
    (next) => async (request) => {
      request.header.set("x-api-key", key);
      return next(request);
    },
  ];
}

/** Lists the models, then streams the answer to the prompt to stdout as it arrives. */
export async function streamChat(transport: Transport, options: Options): Promise<void> {
  const models = await createClient(ResolveService, transport).listModels({});
  console.log(`models: ${models.models.map((m) => m.id).join(", ")}`);

  const chat = createClient(ChatService, transport);
  const stream = chat.streamChat(
    {
      model: options.model,
      temperature: options.temperature,
      messages: [{ role: Role.USER, content: [{ part: { case: "text", value: options.prompt } }] }],
    },
    { timeoutMs: 120_000 },
  );
  for await (const message of stream) {
    if (message.event.case === "delta") {
      process.stdout.write(message.event.value.content);
    } else if (message.event.case === "done") {
      const { finishReason, usage } = message.event.value;
      console.log(
        `\n[${message.model}, ${FinishReason[finishReason]}, ` +
          `${usage?.promptTokens ?? 0} prompt + ${usage?.completionTokens ?? 0} completion tokens]`,
      );
    }
  }
}
