/**
 * Audit ingest benchmark: publishes audit events to NATS JetStream and measures how fast the
 * audit component moves them into PostgreSQL. A script that prints figures, not a test.
 *
 *   node services/audit/bench-ingest.ts [--count 100000] [--nats nats://127.0.0.1:4222]
 *     [--database postgres://postgres@127.0.0.1:5432/latchkey_bench] [--events-per-message 256]
 *     [--batch-size N] [--consumers N] [--linger-ms N]
 *
 * Two phases, each with `count` events of one fresh tenant, on a fresh bus namespace:
 * - backlog: everything is published first, then the ingest starts; its drain rate is the
 *   ingest's own capacity (NATS → PostgreSQL, nothing else on the CPU).
 * - live: the ingest runs while the events are published (by this same process, so the two
 *   share the CPU); reports the end-to-end rate, the lag from the last publish until the
 *   last row is stored, and per-event lag percentiles (stored minus event time).
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { auditSubject, openBus } from "../../libs/bus/index.ts";
import type { Bus } from "../../libs/bus/types.ts";
import { migrate, openDb } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { createLogger } from "../../libs/log/index.ts";
import { createAuditComponent, migrations } from "./component.ts";
import { auditBatchBytes, gatewayEvent } from "./event-fixtures.ts";
import { countEvents } from "./store.ts";

/** Options for measureIngest. */
export interface MeasureIngestOptions {
  natsUrl: string;
  /** A PostgreSQL database the benchmark may migrate (schema `audit`) and write to. */
  databaseUrl: string;
  /** Events per phase (default 100,000). */
  count?: number;
  /** Ingest tuning; the component's defaults when unset. */
  batchSize?: number;
  consumers?: number;
  lingerMs?: number;
  /** Events per published message (default 256: a gateway at ~5,000 requests/s flushing every 50 ms). */
  eventsPerMessage?: number;
  /** Messages in flight at once (default 8). */
  publishWindow?: number;
  /** Gives up when the ingest has not finished after this long (default 10 minutes). */
  timeoutMs?: number;
}

/** What measureIngest found. Rates are events per second. */
export interface IngestMeasurement {
  count: number;
  /** Publish rate into JetStream (backlog phase, ingest idle). */
  publishPerSecond: number;
  /** Drain rate of a backlog: the ingest's capacity. */
  backlogIngestPerSecond: number;
  /** Events per second from the first publish to the last row stored, ingest running. */
  liveIngestPerSecond: number;
  /** From the last publish acknowledged to the last row stored (live phase). */
  liveLagMs: number;
  /** Per-event lag, row stored minus event time (live phase). */
  eventLagP50Ms: number;
  eventLagP99Ms: number;
  /** Ingest counters over both phases. */
  batches: number;
  duplicates: number;
  malformed: number;
}

/**
 * Runs both phases and cleans up after itself (the bench tenant's rows, the namespace's
 * streams). Throws if the ingest does not finish within `timeoutMs`.
 */
export async function measureIngest(options: MeasureIngestOptions): Promise<IngestMeasurement> {
  const count = options.count ?? 100_000;
  const perMessage = options.eventsPerMessage ?? 256;
  const window = options.publishWindow ?? 8;
  const timeoutMs = options.timeoutMs ?? 600_000;
  const namespace = `bench${randomBytes(5).toString("hex")}`;
  const log = createLogger({ component: "bench-ingest", level: "warn" });
  const db = await openDb({ url: options.databaseUrl });
  let bus: Bus | undefined;
  const tenants: string[] = [];
  try {
    await migrate(db, migrations);
    bus = await openBus({ url: options.natsUrl, namespace, log });
    const component = createAuditComponent({
      db,
      bus,
      log,
      ...(options.batchSize !== undefined && { batchSize: options.batchSize }),
      ...(options.consumers !== undefined && { consumers: options.consumers }),
      ...(options.lingerMs !== undefined && { lingerMs: options.lingerMs }),
    });

    // Backlog: publish with the ingest stopped, then time the drain.
    const backlogTenant = `bench-${randomBytes(4).toString("hex")}`;
    tenants.push(backlogTenant);
    const published = await publishEvents(bus, backlogTenant, count, perMessage, window);
    const drainStart = performance.now();
    await component.start();
    await waitForRows(db, backlogTenant, count, timeoutMs);
    const drainSeconds = (performance.now() - drainStart) / 1000;

    // Live: publish while the ingest runs.
    const liveTenant = `bench-${randomBytes(4).toString("hex")}`;
    tenants.push(liveTenant);
    const liveStart = performance.now();
    await publishEvents(bus, liveTenant, count, perMessage, window);
    const lastPublish = performance.now();
    await waitForRows(db, liveTenant, count, timeoutMs);
    const liveEnd = performance.now();
    const lag = await eventLag(db, liveTenant);

    await component.stop();
    const stats = component.ingestStats();
    return {
      count,
      publishPerSecond: Math.round(count / published.seconds),
      backlogIngestPerSecond: Math.round(count / drainSeconds),
      liveIngestPerSecond: Math.round(count / ((liveEnd - liveStart) / 1000)),
      liveLagMs: Math.round(liveEnd - lastPublish),
      eventLagP50Ms: lag.p50,
      eventLagP99Ms: lag.p99,
      batches: stats.batches,
      duplicates: stats.duplicates,
      malformed: stats.malformed,
    };
  } finally {
    await bus?.close();
    await deleteStreams(options.natsUrl, namespace).catch(() => {});
    for (const tenant of tenants) {
      await db.query("DELETE FROM audit.events WHERE tenant = $1", [tenant]).catch(() => {});
    }
    await db.close();
  }
}

/**
 * Publishes `count` gateway events for `tenant` as the gateway does, in AuditEventBatch
 * messages of `perMessage` events, `window` messages in flight.
 */
async function publishEvents(
  bus: Bus,
  tenant: string,
  count: number,
  perMessage: number,
  window: number,
): Promise<{ seconds: number }> {
  const started = performance.now();
  const subject = auditSubject(tenant, "request");
  const token = `tenants/${tenant}/tokens/tok_01jd4k0000000000000000000a`;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const size = Math.min(perMessage, count - next);
      next += size;
      const events = Array.from({ length: size }, () => gatewayEvent({ tenant, token }));
      await bus.publish(subject, auditBatchBytes(...events), { msgId: events[0]?.id ?? "" });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return { seconds: (performance.now() - started) / 1000 };
}

async function waitForRows(db: Db, tenant: string, count: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stored = await countEvents(db, tenant);
    if (stored >= count) return;
    if (performance.now() > deadline) {
      throw new Error(`ingest incomplete after ${timeoutMs} ms: ${stored} of ${count} stored`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function eventLag(db: Db, tenant: string): Promise<{ p50: number; p99: number }> {
  const { rows } = await db.query<{ p50: number; p99: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99
       FROM (SELECT extract(epoch FROM recorded_at - time) * 1000 AS lag
               FROM audit.events WHERE tenant = $1) AS lags`,
    [tenant],
  );
  return { p50: Math.round(Number(rows[0]?.p50 ?? 0)), p99: Math.round(Number(rows[0]?.p99 ?? 0)) };
}

/** Deletes the streams of the benchmark's namespace (the bus names them STREAM_<NS>). */
async function deleteStreams(natsUrl: string, namespace: string): Promise<void> {
  const nc = await connect({ servers: natsUrl, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of ["LATCHKEY_AUDIT", "LATCHKEY_CHANGE"]) {
      await jsm.streams.delete(`${name}_${namespace.toUpperCase()}`).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}

/** Creates the database of `url` if it does not exist (CLI convenience). */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(url);
  maintenance.pathname = "/postgres";
  const client = new pg.Client({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "100000" },
      nats: { type: "string", default: process.env.LATCHKEY_NATS_URL ?? "nats://127.0.0.1:4222" },
      database: {
        type: "string",
        default:
          process.env.LATCHKEY_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/latchkey_bench",
      },
      "batch-size": { type: "string" },
      consumers: { type: "string" },
      "linger-ms": { type: "string" },
      "events-per-message": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const optional = (name: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  await ensureDatabase(values.database);
  const result = await measureIngest({
    natsUrl: values.nats,
    databaseUrl: values.database,
    count: optional("count", values.count) ?? 100_000,
    batchSize: optional("batch-size", values["batch-size"]),
    consumers: optional("consumers", values.consumers),
    lingerMs: optional("linger-ms", values["linger-ms"]),
    eventsPerMessage: optional("events-per-message", values["events-per-message"]),
  });
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`audit ingest, ${result.count} events per phase`);
    console.log(`  publish to JetStream     ${result.publishPerSecond} events/s`);
    console.log(`  backlog drain            ${result.backlogIngestPerSecond} events/s`);
    console.log(`  live (publish + ingest)  ${result.liveIngestPerSecond} events/s`);
    console.log(`  lag after last publish   ${result.liveLagMs} ms`);
    console.log(`  per-event lag p50 / p99  ${result.eventLagP50Ms} / ${result.eventLagP99Ms} ms`);
    console.log(
      `  batches ${result.batches}, duplicates ${result.duplicates}, malformed ${result.malformed}`,
    );
  }
}
