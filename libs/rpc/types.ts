import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Authenticator } from "../auth/principal.ts";
import type { Logger } from "../log/index.ts";

/** TLS files; with caFile the server requires client certificates (mTLS). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

/** Options for createRpcServer. */
export interface RpcServerOptions {
  /** Component name, for logs and health (`token`, `all`, ...). */
  name: string;
  /** Registers the component's Connect services. */
  routes: (router: ConnectRouter) => void;
  /** The services registered by routes, for grpc.health.v1 and server reflection. */
  services: readonly DescService[];
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls?: TlsFiles;
  authenticate: Authenticator;
  log: Logger;
  /** How long stop() lets in-flight calls finish before cutting them off (default 10 s). */
  drainTimeoutMs?: number;
}

/** A running Connect/gRPC/gRPC-Web server. */
export interface RpcServer {
  /** Listens; resolves with the bound port and base URL (`http://host:port`). */
  start(): Promise<{ port: number; url: string }>;
  /** Flips health to NOT_SERVING (readiness), stops accepting, drains, closes. */
  stop(): Promise<void>;
}

/** Options for createClientTransport. */
export interface ClientTransportOptions {
  /** `http://host:port` (h2c) or `https://host:port`. */
  baseUrl: string;
  /** Sent as `authorization: Bearer <credential>` on every call (admin key or gateway key). */
  credential?: string;
  /** CA to trust, and a client certificate for mTLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * A service as the runtime sees it: Connect routes plus background work. `latchkey run X`
 * serves one component on its own port; `latchkey run all` serves every component on one.
 */
export interface Component {
  name: string;
  services: readonly DescService[];
  routes(router: ConnectRouter): void;
  /** Starts background work (outbox relay, consumers). Called after migrations. */
  start(): Promise<void>;
  /** Stops background work, waiting for in-flight work. */
  stop(): Promise<void>;
}
