import { commonEnv, loadEnv, millis, port, storageEnv, z } from "../../libs/config/index.ts";

/** The audit component's environment: the common and storage variables plus its own. */
export const auditEnv = {
  ...commonEnv,
  ...storageEnv,
  /** Port of the AuditService (Connect, gRPC and gRPC-Web) when run on its own. */
  LATCHKEY_AUDIT_PORT: port(7004),
  /** Events written per INSERT by the ingest; a full batch is written at once. */
  LATCHKEY_AUDIT_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(512),
  /**
   * Audit-stream messages handled at once by the durable consumer. Each holds its message
   * (a gateway's batch of up to a few hundred events) until all its events are committed, so
   * this bounds how many events are parked for the next INSERTs.
   */
  LATCHKEY_AUDIT_CONSUMERS: z.coerce.number().int().min(1).max(10_000).default(16),
  /** Milliseconds the first event of a batch waits for more before the batch is written. */
  LATCHKEY_AUDIT_BATCH_LINGER_MS: millis(5),
  /** Events buffered per StreamEvents call for a slow client before it is cut off. */
  LATCHKEY_AUDIT_STREAM_BUFFER: z.coerce.number().int().min(1).max(1_000_000).default(1000),
} as const;

/** The audit component's parsed configuration. */
export type AuditConfig = ReturnType<typeof loadConfig>;

/** Parses the audit component's configuration; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(auditEnv, env);
}
