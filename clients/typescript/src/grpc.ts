// Streams a chat straight from the gateway over gRPC (HTTP/2).
//   npm run build && node dist/grpc.js --address 127.0.0.1:50051 "What is the capital of France? Answer in one word."
import { createGrpcTransport } from "@connectrpc/connect-node";
import { apiKeyInterceptors, parseArgs, streamChat } from "./chat.js";

const options = parseArgs(process.argv.slice(2), "127.0.0.1:50051");
const transport = createGrpcTransport({
  // Plaintext HTTP/2 to a loopback gateway; an https:// URL uses TLS.
  baseUrl: options.address.includes("://") ? options.address : `http://${options.address}`,
  interceptors: apiKeyInterceptors(),
});
await streamChat(transport, options);
