// Streams a chat over grpc-web (HTTP/1.1) through Envoy, as a browser would.
//   make envoy   # in another shell
//   npm run build && node dist/grpc-web.js --address http://127.0.0.1:8080 "What is the capital of France? Answer in one word."
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { apiKeyInterceptors, parseArgs, streamChat } from "./chat.js";

const options = parseArgs(process.argv.slice(2), "http://127.0.0.1:8080");
const transport = createGrpcWebTransport({
  baseUrl: options.address,
  httpVersion: "1.1",
  interceptors: apiKeyInterceptors(),
});
await streamChat(transport, options);
