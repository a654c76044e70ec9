import { readFileSync } from "node:fs";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { createClientInterceptors } from "./client-interceptors.ts";
import type { ClientTransportOptions } from "./types.ts";

/** A network transport that can let go of its HTTP/2 connection. */
export interface ClientTransport extends Transport {
  /** Closes the HTTP/2 connection; calls still open fail with Canceled. */
  close(): void;
}

/**
 * A gRPC transport to another Latchkey component over HTTP/2: h2c for `http://` URLs
 * (prior knowledge, loopback and dev only), TLS for `https://` with an optional CA to
 * trust and a client certificate for mTLS. Adds `authorization: Bearer <credential>`
 * when given and a CLIENT span with `traceparent` on every call.
 *
 * One HTTP/2 connection per transport, multiplexing every call: create the transport
 * once per target and share it. The connection is opened on first use, unref'd while
 * idle (it never keeps the process alive), closed after 15 minutes without a call
 * (connect-node's default `idleConnectionTimeoutMs`) and reopened on the next call.
 */
export function createClientTransport(options: ClientTransportOptions): ClientTransport {
  const url = new URL(options.baseUrl);
  const tls = options.tls;
  if (url.protocol === "http:" && (tls?.certFile || tls?.caFile)) {
    // Silently sending a client certificate nowhere would hide a misconfiguration.
    throw new Error(`TLS files given for a cleartext URL: ${options.baseUrl}`);
  }
  const read = (file: string | undefined) => (file ? readFileSync(file) : undefined);
  const nodeOptions =
    url.protocol === "https:"
      ? {
          ...(tls?.caFile ? { ca: read(tls.caFile) } : {}),
          ...(tls?.certFile ? { cert: read(tls.certFile) } : {}),
          ...(tls?.keyFile ? { key: read(tls.keyFile) } : {}),
        }
      : {};
  const sessionManager = new Http2SessionManager(url, {}, nodeOptions);
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager,
    interceptors: createClientInterceptors(options.credential),
  });
  return {
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close: () => sessionManager.abort(),
  };
}
