// Transports for Node.js. Bundlers building for the browser swap this module for
// transport-browser.ts (package.json "browser"), so a browser bundle never pulls in node:http2.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

/** What `transport` means when the options leave it out: gRPC over HTTP/2 in Node. */
export const DEFAULT_TRANSPORT: "grpc" | "grpc-web" = "grpc";

/** gRPC over HTTP/2 straight to the gateway (plaintext for `http://`, TLS for `https://`, trusting
 * Node's authorities and `tlsCa` if given). */
export function createHttp2GrpcTransport(
  baseUrl: string,
  interceptors: Interceptor[],
  tlsCa?: string | Uint8Array,
): Transport {
  if (tlsCa === undefined) return createGrpcTransport({ baseUrl, interceptors });
  const ca = typeof tlsCa === "string" ? tlsCa : Buffer.from(tlsCa);
  return createGrpcTransport({ baseUrl, interceptors, nodeOptions: { ca } });
}
