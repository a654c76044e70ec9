import { commonEnv, loadEnv, millis, port, storageEnv, z } from "../../libs/config/index.ts";
import { otlpTracesUrl } from "../../libs/telemetry/index.ts";
import type { GatewaySettings } from "./gateway.ts";

const positiveInt = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

/** The gateway's environment: commonEnv + its own variables (it keeps no state). */
export const gatewayEnv = {
  ...commonEnv,
  /** Port of the HTTP data plane that clients call with their proxy tokens. */
  LATCHKEY_GATEWAY_PORT: port(8080),
  /**
   * `true` lets several gateway processes on one host share LATCHKEY_GATEWAY_PORT
   * (SO_REUSEPORT; Linux), so a host runs one gateway per core behind one address.
   */
  LATCHKEY_GATEWAY_REUSE_PORT: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  /** Base URL of the token service (VerifyToken). */
  LATCHKEY_TOKEN_URL: z.string().url().default("http://127.0.0.1:7001"),
  /** Base URL of the policy service (GetBundle). */
  LATCHKEY_POLICY_URL: z.string().url().default("http://127.0.0.1:7002"),
  /** Base URL of the vault (ResolveCredential). */
  LATCHKEY_VAULT_URL: z.string().url().default("http://127.0.0.1:7003"),
  /** NATS URL with JetStream; unset selects the in-process bus (embedded mode). */
  LATCHKEY_NATS_URL: storageEnv.LATCHKEY_NATS_URL,
  /** Prefix isolating this installation's streams and subjects on a shared NATS server. */
  LATCHKEY_NATS_NAMESPACE: storageEnv.LATCHKEY_NATS_NAMESPACE,
  /** Largest request head (request line + headers) accepted, in bytes; larger gets 431. */
  LATCHKEY_GATEWAY_MAX_HEADER_BYTES: positiveInt(16_384),
  /** Most request headers accepted; Node ignores the ones past it. */
  LATCHKEY_GATEWAY_MAX_HEADERS: positiveInt(100),
  /** Longest request target (path and query) accepted, in bytes; longer gets 400. */
  LATCHKEY_GATEWAY_MAX_TARGET_BYTES: positiveInt(8_192),
  /** Time a client has to send the complete request head (slowloris guard). */
  LATCHKEY_GATEWAY_HEADERS_TIMEOUT_MS: millis(10_000),
  /** Time a client has to send the complete request, body included. */
  LATCHKEY_GATEWAY_REQUEST_TIMEOUT_MS: millis(300_000),
  /** Idle time after which a client's keep-alive connection is closed. */
  LATCHKEY_GATEWAY_KEEP_ALIVE_TIMEOUT_MS: millis(65_000),
  /** Longest a token verdict (valid or refused) is cached, whatever VerifyToken allows. */
  LATCHKEY_GATEWAY_VERIFY_CACHE_MAX_MS: millis(60_000),
  /** Most cached valid-token verdicts. */
  LATCHKEY_GATEWAY_VERIFY_CACHE_SIZE: positiveInt(100_000),
  /** Most cached refused-token verdicts, kept apart so junk tokens cannot evict valid ones. */
  LATCHKEY_GATEWAY_VERIFY_NEGATIVE_CACHE_SIZE: positiveInt(10_000),
  /** Longest a tenant's bundle (upstreams + policy) is cached, whatever GetBundle allows. */
  LATCHKEY_GATEWAY_BUNDLE_CACHE_MAX_MS: millis(300_000),
  /** Most tenants whose bundle is cached at once. */
  LATCHKEY_GATEWAY_BUNDLE_CACHE_SIZE: positiveInt(10_000),
  /**
   * How long past its TTL a cached token verdict or bundle may still be used while the
   * token or policy service is unreachable (DESIGN.md §8); 0 fails closed at once. Such
   * requests are audited with reason `stale_cache`.
   */
  LATCHKEY_GATEWAY_STALE_IF_ERROR_MS: millis(30_000),
  /** Most cached upstream credentials (per credential and origin). */
  LATCHKEY_GATEWAY_CREDENTIAL_CACHE_SIZE: positiveInt(10_000),
  /** A credential is resolved again this long before its lease ends. */
  LATCHKEY_GATEWAY_CREDENTIAL_RENEW_MARGIN_MS: millis(10_000),
  /** Keep-alive connections per upstream origin. */
  LATCHKEY_GATEWAY_UPSTREAM_CONNECTIONS: positiveInt(128),
  /** Time to open a connection to an upstream before answering 504. */
  LATCHKEY_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS: positiveInt(10_000),
  /**
   * Longest silence between two chunks of an upstream response; 0 disables it, which
   * long-lived server-sent event streams without heartbeats need.
   */
  LATCHKEY_GATEWAY_UPSTREAM_BODY_TIMEOUT_MS: millis(300_000),
  /** Idle upstream connections are closed after this long. */
  LATCHKEY_GATEWAY_UPSTREAM_KEEP_ALIVE_MS: millis(60_000),
  /** Audit events held in memory while waiting for the bus; the oldest are dropped past it. */
  LATCHKEY_GATEWAY_AUDIT_BUFFER_SIZE: positiveInt(10_000),
  /** How often buffered audit events are published. */
  LATCHKEY_GATEWAY_AUDIT_FLUSH_MS: positiveInt(50),
  /** Time given to in-flight requests and the audit buffer on shutdown. */
  LATCHKEY_GATEWAY_DRAIN_TIMEOUT_MS: millis(10_000),
  /**
   * Read so that an exporter choice turns full OpenTelemetry spans on; without one the
   * gateway only propagates W3C trace ids (cheaper, nothing to export anyway).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().optional(),
  /** As OTEL_EXPORTER_OTLP_ENDPOINT, for traces only. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().optional(),
  /** `otlp` or `none`, per the OpenTelemetry specification. */
  OTEL_TRACES_EXPORTER: z.string().optional(),
} as const;

/** The parsed gateway environment. */
export type GatewayEnv = ReturnType<typeof loadConfig>;

/** Parses and checks the gateway's environment; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(gatewayEnv, env);
}

/** The createGateway settings an environment describes. */
export function gatewaySettings(env: GatewayEnv): GatewaySettings {
  return {
    host: env.LATCHKEY_HOST,
    port: env.LATCHKEY_GATEWAY_PORT,
    reusePort: env.LATCHKEY_GATEWAY_REUSE_PORT,
    maxHeaderBytes: env.LATCHKEY_GATEWAY_MAX_HEADER_BYTES,
    maxHeaders: env.LATCHKEY_GATEWAY_MAX_HEADERS,
    maxTargetBytes: env.LATCHKEY_GATEWAY_MAX_TARGET_BYTES,
    headersTimeoutMs: env.LATCHKEY_GATEWAY_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.LATCHKEY_GATEWAY_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: env.LATCHKEY_GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
    verifyCacheMaxMs: env.LATCHKEY_GATEWAY_VERIFY_CACHE_MAX_MS,
    verifyCacheSize: env.LATCHKEY_GATEWAY_VERIFY_CACHE_SIZE,
    verifyNegativeCacheSize: env.LATCHKEY_GATEWAY_VERIFY_NEGATIVE_CACHE_SIZE,
    bundleCacheMaxMs: env.LATCHKEY_GATEWAY_BUNDLE_CACHE_MAX_MS,
    bundleCacheSize: env.LATCHKEY_GATEWAY_BUNDLE_CACHE_SIZE,
    staleIfErrorMs: env.LATCHKEY_GATEWAY_STALE_IF_ERROR_MS,
    credentialCacheSize: env.LATCHKEY_GATEWAY_CREDENTIAL_CACHE_SIZE,
    credentialRenewMarginMs: env.LATCHKEY_GATEWAY_CREDENTIAL_RENEW_MARGIN_MS,
    upstreamConnections: env.LATCHKEY_GATEWAY_UPSTREAM_CONNECTIONS,
    upstreamConnectTimeoutMs: env.LATCHKEY_GATEWAY_UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamBodyTimeoutMs: env.LATCHKEY_GATEWAY_UPSTREAM_BODY_TIMEOUT_MS,
    upstreamKeepAliveMs: env.LATCHKEY_GATEWAY_UPSTREAM_KEEP_ALIVE_MS,
    auditBufferSize: env.LATCHKEY_GATEWAY_AUDIT_BUFFER_SIZE,
    auditFlushMs: env.LATCHKEY_GATEWAY_AUDIT_FLUSH_MS,
    drainTimeoutMs: env.LATCHKEY_GATEWAY_DRAIN_TIMEOUT_MS,
    tracing: otlpTracesUrl({
      OTEL_EXPORTER_OTLP_ENDPOINT: env.OTEL_EXPORTER_OTLP_ENDPOINT,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
      OTEL_TRACES_EXPORTER: env.OTEL_TRACES_EXPORTER,
    })
      ? "spans"
      : "ids",
  };
}
