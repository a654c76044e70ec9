import type { Bus } from "../../libs/bus/types.ts";
import type { Db, MigrateOptions } from "../../libs/db/types.ts";
import { AuditService } from "../../libs/gen/latchkey/audit/v1/audit_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { createIngest, type IngestStats } from "./ingest.ts";
import { registerAuditRoutes } from "./routes.ts";

/**
 * The audit schema's migrations. No outbox: the audit service publishes nothing.
 */
export const migrations: MigrateOptions = {
  schema: "audit",
  dir: new URL("./migrations/", import.meta.url),
};

/** Options for createAuditComponent. */
export interface AuditComponentOptions {
  db: Db;
  bus: Bus;
  log: Logger;
  /** Events per INSERT (LATCHKEY_AUDIT_BATCH_SIZE, default 512). */
  batchSize?: number;
  /** Audit-stream messages handled at once (LATCHKEY_AUDIT_CONSUMERS, default 16). */
  consumers?: number;
  /** Linger of a batch in ms (LATCHKEY_AUDIT_BATCH_LINGER_MS, default 5). */
  lingerMs?: number;
  /** Events buffered per StreamEvents call (LATCHKEY_AUDIT_STREAM_BUFFER, default 1000). */
  streamBuffer?: number;
  clock?: () => Date;
}

/** The audit component, with its ingest counters for metrics. */
export interface AuditComponent extends Component {
  /** Ingest counters: received, inserted, duplicates, malformed, batches, failed batches. */
  ingestStats(): IngestStats;
}

/**
 * Creates the audit component: AuditService (ListEvents, StreamEvents, GetUsage) over the
 * `audit` schema, and the ingest consuming the audit and change streams. start() starts
 * the durable consumers; stop() ends open live tails, stops the consumers and commits the
 * batch in flight, so everything acknowledged is stored.
 */
export function createAuditComponent(options: AuditComponentOptions): AuditComponent {
  const log = options.log.child({ component: "audit" });
  const ingest = createIngest({
    db: options.db,
    bus: options.bus,
    log,
    batchSize: options.batchSize,
    lingerMs: options.lingerMs,
    consumers: options.consumers,
    clock: options.clock,
  });
  let shutdown = new AbortController();
  return {
    name: "audit",
    services: [AuditService],
    routes(router) {
      registerAuditRoutes(router, {
        db: options.db,
        bus: options.bus,
        log,
        streamBuffer: options.streamBuffer ?? 1000,
        // A function, so a component started again after stop() serves tails again.
        shutdown: () => shutdown.signal,
        clock: options.clock,
      });
    },
    async start() {
      if (shutdown.signal.aborted) shutdown = new AbortController();
      ingest.start();
    },
    async stop() {
      shutdown.abort();
      await ingest.stop();
    },
    ingestStats: () => ingest.stats(),
  };
}
