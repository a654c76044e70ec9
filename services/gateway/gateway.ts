import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Client } from "@connectrpc/connect";
import type { Bus, Subscription } from "../../libs/bus/types.ts";
import type { PolicyService } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { TokenService } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { VaultService } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { createAuditPublisher } from "./audit.ts";
import { createCredentials } from "./credential.ts";
import { createForwarder } from "./forward.ts";
import { subscribeInvalidation } from "./invalidation.ts";
import { createIdSource } from "./request-ids.ts";
import { createRequestPath } from "./request-path.ts";
import { createUpstreamResolver } from "./resolve-upstream.ts";
import { createTracing, type TracingMode } from "./tracing.ts";
import { createVerifier } from "./verify.ts";

/** The gateway's settings (config.ts maps the environment onto them). */
export interface GatewaySettings {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Let several gateway processes bind the same port (SO_REUSEPORT, Linux): the kernel
   * spreads connections across them, which is how one host uses every core.
   */
  reusePort: boolean;
  /** Largest request head in bytes (Node answers 431 past it). */
  maxHeaderBytes: number;
  /** Most request headers read. */
  maxHeaders: number;
  /** Longest request target in bytes. */
  maxTargetBytes: number;
  /** Time to receive a request head. */
  headersTimeoutMs: number;
  /** Time to receive a whole request. */
  requestTimeoutMs: number;
  /** Idle time before a client keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Upper bound on a token verdict's cache life. */
  verifyCacheMaxMs: number;
  verifyCacheSize: number;
  verifyNegativeCacheSize: number;
  /** Upper bound on a bundle's cache life. */
  bundleCacheMaxMs: number;
  bundleCacheSize: number;
  /** How long past its TTL a verdict or bundle may be used while its service fails. */
  staleIfErrorMs: number;
  credentialCacheSize: number;
  credentialRenewMarginMs: number;
  upstreamConnections: number;
  upstreamConnectTimeoutMs: number;
  upstreamBodyTimeoutMs: number;
  upstreamKeepAliveMs: number;
  auditBufferSize: number;
  auditFlushMs: number;
  /** Time given to in-flight requests and the audit buffer on stop. */
  drainTimeoutMs: number;
  tracing: TracingMode;
}

/** Defaults, the same as config.ts's. */
export const defaultGatewaySettings: GatewaySettings = {
  host: "127.0.0.1",
  port: 8080,
  maxHeaderBytes: 16_384,
  maxHeaders: 100,
  maxTargetBytes: 8_192,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 65_000,
  verifyCacheMaxMs: 60_000,
  verifyCacheSize: 100_000,
  verifyNegativeCacheSize: 10_000,
  bundleCacheMaxMs: 300_000,
  bundleCacheSize: 10_000,
  staleIfErrorMs: 30_000,
  credentialCacheSize: 10_000,
  credentialRenewMarginMs: 10_000,
  upstreamConnections: 128,
  upstreamConnectTimeoutMs: 10_000,
  upstreamBodyTimeoutMs: 300_000,
  upstreamKeepAliveMs: 60_000,
  auditBufferSize: 10_000,
  auditFlushMs: 50,
  drainTimeoutMs: 10_000,
  reusePort: false,
  tracing: "ids",
};

/** Options for createGateway. */
export interface GatewayOptions {
  tokenClient: Client<typeof TokenService>;
  policyClient: Client<typeof PolicyService>;
  vaultClient: Client<typeof VaultService>;
  bus: Bus;
  log: Logger;
  /** Settings; anything left out takes its default. */
  config?: Partial<GatewaySettings>;
}

/** A running gateway. */
export interface Gateway {
  /** Listens; resolves with the bound port and base URL. */
  start(): Promise<{ port: number; url: string }>;
  /**
   * Flips readiness, stops accepting, lets in-flight requests finish (then cuts the rest
   * after drainTimeoutMs), publishes the audit buffer, closes upstream connections.
   */
  stop(): Promise<void>;
}

/**
 * Creates the gateway: the HTTP data plane with explicit limits, its caches, the change
 * event subscription that invalidates them, and the audit flusher. The RPC clients are
 * passed in (the runtime builds them on libs/rpc transports; tests use in-memory ones).
 */
export function createGateway(options: GatewayOptions): Gateway {
  const settings: GatewaySettings = { ...defaultGatewaySettings, ...options.config };
  const { bus, log } = options;
  const ids = createIdSource();
  const verifier = createVerifier({
    tokenClient: options.tokenClient,
    log,
    maxTtlMs: settings.verifyCacheMaxMs,
    maxEntries: settings.verifyCacheSize,
    maxNegativeEntries: settings.verifyNegativeCacheSize,
    staleIfErrorMs: settings.staleIfErrorMs,
  });
  const upstreams = createUpstreamResolver({
    policyClient: options.policyClient,
    log,
    maxTtlMs: settings.bundleCacheMaxMs,
    maxEntries: settings.bundleCacheSize,
    staleIfErrorMs: settings.staleIfErrorMs,
  });
  const credentials = createCredentials({
    vaultClient: options.vaultClient,
    log,
    maxEntries: settings.credentialCacheSize,
    renewMarginMs: settings.credentialRenewMarginMs,
  });
  const forwarder = createForwarder({
    connections: settings.upstreamConnections,
    connectTimeoutMs: settings.upstreamConnectTimeoutMs,
    bodyTimeoutMs: settings.upstreamBodyTimeoutMs,
    keepAliveMs: settings.upstreamKeepAliveMs,
  });
  const audit = createAuditPublisher({
    bus,
    log,
    ids,
    capacity: settings.auditBufferSize,
    flushMs: settings.auditFlushMs,
  });
  let ready = false;
  const handleRequest = createRequestPath({
    limits: { maxTargetBytes: settings.maxTargetBytes },
    verifier,
    upstreams,
    credentials,
    forwarder,
    audit,
    tracing: createTracing(settings.tracing, ids),
    ids,
    log,
    isReady: () => ready,
  });

  const server = createServer(
    {
      maxHeaderSize: settings.maxHeaderBytes,
      // Node refuses a headers timeout above the request timeout.
      headersTimeout: Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs),
      requestTimeout: settings.requestTimeoutMs,
      keepAlive: true,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      noDelay: true,
      // Duplicate Authorization must stay visible in rawHeaders (route.ts refuses it);
      // joining is irrelevant to a proxy that forwards the raw list.
      joinDuplicateHeaders: false,
      // A request declaring no body (no Content-Length, no Transfer-Encoding: most GETs) is
      // handed over already ended, without the stream's data/end/close events. The request
      // path reads a body only when one is declared (route.ts) and watches the response,
      // not the request, for a client that goes away.
      optimizeEmptyRequests: true,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      void handleRequest(req, res);
    },
  );
  server.maxHeadersCount = settings.maxHeaders;
  server.maxRequestsPerSocket = 0;
  server.keepAliveTimeout = settings.keepAliveTimeoutMs;

  let subscription: Subscription | undefined;

  return {
    async start() {
      subscription = subscribeInvalidation(bus, { verifier, upstreams, credentials }, log);
      audit.start();
      server.listen({ port: settings.port, host: settings.host, reusePort: settings.reusePort });
      await once(server, "listening");
      const { port } = server.address() as AddressInfo;
      ready = true;
      const host = settings.host.includes(":") ? `[${settings.host}]` : settings.host;
      const url = `http://${host}:${port}`;
      log.info({ url, tracing: settings.tracing }, "gateway listening");
      return { port, url };
    },
    async stop() {
      ready = false;
      if (server.listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), settings.drainTimeoutMs);
        });
        if (await Promise.race([closed.then(() => false), timedOut])) {
          log.warn("in-flight requests cut after the drain timeout");
          server.closeAllConnections();
          await closed;
        }
        clearTimeout(timer);
      }
      await subscription?.stop();
      subscription = undefined;
      await audit.stop(settings.drainTimeoutMs);
      await forwarder.close();
      log.info({ auditDropped: audit.dropped }, "gateway stopped");
    },
  };
}
