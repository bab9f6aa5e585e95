// The transport a ComputeClient speaks and the credential it sends. The credential lives only in
// the interceptor's closure: no object of the SDK holds it where a log, JSON.stringify or
// util.inspect could show it.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createHttp2GrpcTransport, DEFAULT_TRANSPORT } from "./transport-node.js";

/** How the client reaches the gateway. */
export type TransportKind = "grpc" | "grpc-web";

/** A developer key (`sk_…`, or the gateway's static key), or an OAuth access token (a JWT from the
 * gateway's configured issuer; a function is asked for a fresh one on every call). Both are sent as
 * `authorization: Bearer …`. */
export type Credential =
  | { kind: "apiKey"; apiKey: string }
  | { kind: "oauth"; accessToken: string | (() => string | Promise<string>) };

export function credentialInterceptor(credential: Credential): Interceptor {
  let token: () => string | Promise<string>;
  if (credential.kind === "apiKey") {
    const apiKey = credential.apiKey;
    if (typeof apiKey !== "string" || apiKey === "") throw new TypeError("credential.apiKey must be a non-empty string");
    token = () => apiKey;
  } else if (credential.kind === "oauth") {
    const accessToken = credential.accessToken;
    if (typeof accessToken === "function") token = accessToken;
    else if (typeof accessToken === "string" && accessToken !== "") token = () => accessToken;
    else throw new TypeError("credential.accessToken must be a non-empty string or a function returning one");
  } else {
    throw new TypeError(`unknown credential kind ${JSON.stringify((credential as { kind: unknown }).kind)}`);
  }
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${await token()}`);
    return next(request);
  };
}

/** `host:port` (a gRPC target) becomes `http://host:port`; a URL stays as it is. */
export function normalizeBaseUrl(baseUrl: string): string {
  if (typeof baseUrl !== "string" || baseUrl === "") throw new TypeError("baseUrl must be a non-empty string");
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl) ? baseUrl.replace(/\/+$/, "") : `http://${baseUrl}`;
}

export function createTransport(
  kind: TransportKind,
  baseUrl: string,
  interceptors: Interceptor[],
  tlsCa?: string | Uint8Array,
): Transport {
  if (kind === "grpc") return createHttp2GrpcTransport(baseUrl, interceptors, tlsCa);
  // fetch cannot be told which authorities to trust: NODE_EXTRA_CA_CERTS does that in Node, the OS in a browser.
  if (tlsCa !== undefined) throw new TypeError('tlsCa applies to transport "grpc" only');
  // fetch-based, as in a browser (Node 18+ has fetch too), through Envoy's grpc_web filter.
  if (kind === "grpc-web") return createGrpcWebTransport({ baseUrl, interceptors });
  throw new TypeError(`unknown transport ${JSON.stringify(kind)}: "grpc" or "grpc-web"`);
}

export { DEFAULT_TRANSPORT };
