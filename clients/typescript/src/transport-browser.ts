// The browser's stand-in for transport-node.ts (package.json "browser"): browsers cannot speak
// gRPC over HTTP/2, so they use grpc-web through Envoy, which is also their default.
import type { Interceptor, Transport } from "@connectrpc/connect";

/** What `transport` means when the options leave it out: grpc-web (through Envoy) in a browser. */
export const DEFAULT_TRANSPORT: "grpc" | "grpc-web" = "grpc-web";

export function createHttp2GrpcTransport(
  _baseUrl: string,
  _interceptors: Interceptor[],
  _tlsCa?: string | Uint8Array,
): Transport {
  throw new TypeError(
    'transport "grpc" needs Node.js (HTTP/2); in a browser use "grpc-web" with Envoy\'s URL as baseUrl',
  );
}
