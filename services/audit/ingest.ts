import type { Bus, BusMessage, Subscription } from "../../libs/bus/types.ts";
import { sqlState } from "../../libs/db/index.ts";
import type { Queryable } from "../../libs/db/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import {
  auditBatchToRows,
  changePayloadToRow,
  type DecodedBatch,
  type EventRow,
  MalformedEventError,
} from "./event-row.ts";
import { insertEvents } from "./store.ts";

/** Durable consumer names: one position per stream, shared by every audit replica. */
export const consumerNames = { audit: "audit-ingest", change: "audit-changes" } as const;

/** Counters of the ingest since it was created (exposed as metrics by the runtime). */
export interface IngestStats {
  /** Messages handed to the ingest by the bus (redeliveries count again). */
  received: number;
  /** Rows inserted. */
  inserted: number;
  /** Well-formed messages whose event was already stored (redelivery, republish). */
  duplicates: number;
  /** Payloads that could not be recorded, acknowledged and skipped. */
  malformed: number;
  /** INSERT statements that committed. */
  batches: number;
  /** Batches that failed and were left for the bus to redeliver. */
  failedBatches: number;
}

/** Options for createIngest. */
export interface IngestOptions {
  db: Queryable;
  bus: Bus;
  log: Logger;
  /** Rows per INSERT; a batch is written as soon as it is full (default 512). */
  batchSize?: number;
  /** How long the first message of a batch waits for company before it is written (default 5 ms). */
  lingerMs?: number;
  /**
   * Messages of the audit stream handled at once (default 16): the consumer's concurrency.
   * Each handler holds its message (a batch of events) until all its events are committed,
   * so the events parked for the next INSERTs are those of the messages in flight.
   */
  consumers?: number;
  /** Stands in for the wall clock (events without a time get the receive time). */
  clock?: () => Date;
}

type Handler = (message: BusMessage) => Promise<void>;

const noop = () => {};

/** Messages of the change stream handled at once: admin changes arrive at human pace. */
const changeConcurrency = 4;
/**
 * Largest pull: messages fetched ahead of the handlers, so the next one is there when a
 * handler slot frees. Fetched-but-unhandled messages count against JetStream's
 * max_ack_pending (default 1000) like the in-flight ones, so pull + concurrency should stay
 * under it or the server stops delivering until acks come back.
 */
const maxPullBatch = 512;

/** The audit ingest: durable consumers of the audit and change streams writing to PostgreSQL. */
export interface Ingest {
  /** Starts both durable consumers. */
  start(): void;
  /** Stops the consumers; the batch being written and every waiting message are committed first. */
  stop(): Promise<void>;
  /** The audit-stream handler: resolves (acks) once the event is committed. */
  handleAudit(message: BusMessage): Promise<void>;
  /** The change-stream handler: resolves (acks) once the change is committed. */
  handleChange(message: BusMessage): Promise<void>;
  /** Counters, for metrics and tests. */
  stats(): IngestStats;
}

interface Waiting {
  row: EventRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Creates the ingest. Every handler call parks its message's events in the INSERT batch; a
 * full batch, or the linger timer, writes the batch (insertEvents: stored ids are skipped)
 * and only then settles the handlers: a message is acked once all its events are
 * committed, and left for redelivery if any INSERT it joined failed. So nothing is acked
 * before it is committed (nothing lost) and a redelivered event is skipped by the primary
 * key (nothing doubled).
 *
 * The consumer runs `consumers` handlers at once (ConsumeOptions.concurrency), so the events
 * of that many messages can be parked at a time, and they make up the batches.
 */
export function createIngest(options: IngestOptions): Ingest {
  const { db, bus, log } = options;
  const batchSize = Math.max(1, options.batchSize ?? 512);
  const lingerMs = Math.max(0, options.lingerMs ?? 5);
  const consumers = Math.max(1, options.consumers ?? 16);
  const clock = options.clock ?? (() => new Date());
  const stats: IngestStats = {
    received: 0,
    inserted: 0,
    duplicates: 0,
    malformed: 0,
    batches: 0,
    failedBatches: 0,
  };
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | undefined;
  const writing = new Set<Promise<void>>();
  let subscriptions: Subscription[] = [];

  function enqueue(row: EventRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      waiting.push({ row, resolve, reject });
      if (waiting.length >= batchSize) flush();
      else timer ??= setTimeout(flush, lingerMs);
    });
  }

  /** Starts writing what is waiting; several batches may be in flight on different connections. */
  function flush(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    const done: Promise<void> = write(batch).finally(() => writing.delete(done));
    writing.add(done);
  }

  async function write(batch: Waiting[]): Promise<void> {
    try {
      const inserted = await insertEvents(
        db,
        batch.map((w) => w.row),
      );
      stats.batches++;
      stats.inserted += inserted;
      stats.duplicates += batch.length - inserted;
      for (const w of batch) w.resolve();
    } catch (err) {
      if (isDataError(err) && batch.length > 1) {
        // One row PostgreSQL refuses (a value our validation let through) would otherwise
        // fail the whole batch on every redelivery and stall the stream: find it row by row.
        await writeOneByOne(batch);
        return;
      }
      if (isDataError(err)) {
        skipPoison(batch[0] as Waiting, err);
        return;
      }
      stats.failedBatches++;
      log.warn(
        { err: safeError(err), events: batch.length },
        "audit insert failed; events left for redelivery",
      );
      for (const w of batch) w.reject(err);
    }
  }

  async function writeOneByOne(batch: Waiting[]): Promise<void> {
    for (const [i, w] of batch.entries()) {
      try {
        const inserted = await insertEvents(db, [w.row]);
        stats.batches++;
        stats.inserted += inserted;
        stats.duplicates += 1 - inserted;
        w.resolve();
      } catch (err) {
        if (isDataError(err)) {
          skipPoison(w, err);
          continue;
        }
        stats.failedBatches++;
        log.warn({ err: safeError(err) }, "audit insert failed; events left for redelivery");
        for (const rest of batch.slice(i)) rest.reject(err);
        return;
      }
    }
  }

  function skipPoison(w: Waiting, err: unknown): void {
    stats.malformed++;
    log.error(
      { event_id: w.row.id, sqlstate: sqlState(err), malformed: stats.malformed },
      "audit event refused by the database; acknowledged and skipped",
    );
    w.resolve();
  }

  function skipMalformed(message: BusMessage, err: unknown): Promise<void> {
    if (!(err instanceof MalformedEventError)) return Promise.reject(err);
    stats.malformed++;
    // The subject names tenant and kind, never a secret; the payload itself is not logged.
    log.warn(
      { subject: message.subject, reason: err.message, malformed: stats.malformed },
      "malformed audit payload acknowledged and skipped",
    );
    return Promise.resolve();
  }

  function handleAudit(message: BusMessage): Promise<void> {
    stats.received++;
    let decoded: DecodedBatch;
    try {
      decoded = auditBatchToRows(message.data, clock());
    } catch (err) {
      return skipMalformed(message, err);
    }
    if (decoded.malformed.length > 0) {
      stats.malformed += decoded.malformed.length;
      log.warn(
        {
          subject: message.subject,
          skipped: decoded.malformed.length,
          reason: decoded.malformed[0],
          malformed: stats.malformed,
        },
        "malformed audit events acknowledged and skipped",
      );
    }
    // The message is acked once every one of its events is committed.
    return Promise.all(decoded.rows.map(enqueue)).then(noop);
  }

  function handleChange(message: BusMessage): Promise<void> {
    stats.received++;
    let row: EventRow;
    try {
      row = changePayloadToRow(message.data, message.headers, clock());
    } catch (err) {
      return skipMalformed(message, err);
    }
    return enqueue(row);
  }

  return {
    handleAudit,
    handleChange,
    stats: () => ({ ...stats }),
    start() {
      if (subscriptions.length > 0) return;
      // One pull subscription per stream with many handlers in flight, rather than many
      // competing subscriptions each holding one message: one pull request stream to the
      // server instead of hundreds, and full batches (measured in bench-ingest.ts).
      const consume = (stream: "audit" | "change", concurrency: number, handler: Handler) => {
        subscriptions.push(
          bus.consume({
            stream,
            durable: consumerNames[stream],
            handler,
            concurrency,
            batch: Math.min(concurrency, maxPullBatch),
          }),
        );
      };
      consume("audit", consumers, handleAudit);
      consume("change", changeConcurrency, handleChange);
    },
    async stop() {
      const stopping = subscriptions.map((s) => s.stop());
      subscriptions = [];
      // The consumers wait for their in-flight handlers, which wait for their batch:
      // write it now rather than after the linger.
      flush();
      await Promise.all(stopping);
      flush();
      await Promise.all(writing);
    },
  };
}

/**
 * SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): the rows are
 * at fault, not the connection, so retrying the same rows cannot help.
 */
function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

/** The parts of a database error safe to log (never parameters, which hold event data). */
function safeError(err: unknown): { message: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? { message: err.message, code } : { message: err.message };
  }
  return { message: String(err) };
}
