import { assertSchemaName } from "../db/migrate.ts";
import type { Queryable } from "../db/types.ts";
import type { OutboxRelay, OutboxRelayOptions } from "./types.ts";

interface OutboxRow {
  seq: number;
  id: string;
  subject: string;
  payload: Uint8Array;
  headers: Record<string, string> | null;
}

/** What one relay round did. */
interface RoundResult {
  sent: number;
  /** Rows were left unsent because a publish failed. */
  error?: unknown;
  /** The batch was full: more rows are probably waiting. */
  more: boolean;
}

/**
 * Creates the relay that publishes committed outbox rows, oldest first, with the event id
 * as the NATS message id, and marks them sent. Delivery is at least once: a crash between
 * publish and mark republishes the row, and JetStream's duplicate window drops the copy.
 *
 * On PostgreSQL a round locks its rows (`for update skip locked`) for the duration of the
 * publishes, so several replicas share the work without publishing a row twice. PGlite is
 * one connection in one process: holding a transaction open across network publishes
 * would stall every other query, so there a round reads, publishes, then marks.
 *
 * A failed publish keeps the row (and every later one, to keep order) for the next round;
 * rounds then back off, doubling up to `maxBackoffMs`, and the failure is logged with the
 * event id and subject only, never the payload.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, schema, bus, log } = options;
  assertSchemaName(schema);
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const batchSize = options.batchSize ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const selectSql = `select seq, id, subject, payload, headers from ${schema}.outbox
    where sent_at is null order by seq limit $1`;
  const markSql = `update ${schema}.outbox set sent_at = now() where seq = any($1::bigint[])`;
  const retentionMs = options.retentionMs ?? 3_600_000;
  // Bounded per call so a long backlog of sent rows never becomes one long-locking delete.
  const pruneSql = `delete from ${schema}.outbox where seq in (select seq from ${schema}.outbox
    where sent_at < now() - make_interval(secs => $1) order by seq limit 1000)`;
  let lastPrune = 0;

  /** Deletes sent rows past retention, at most once a minute (or per retention period). */
  async function prune(): Promise<void> {
    if (Date.now() - lastPrune < Math.min(60_000, retentionMs)) return;
    lastPrune = Date.now();
    try {
      await db.query(pruneSql, [retentionMs / 1000]);
    } catch (error) {
      log.warn({ err: error, schema }, "outbox prune failed; retrying in a minute");
    }
  }

  /** Rounds run one at a time in this process: the loop, kicks and flush() share it. */
  let roundChain: Promise<unknown> = Promise.resolve();
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  let wake: (() => void) | undefined;
  let kicked = false;
  let failures = 0;

  async function publishRows(rows: OutboxRow[]): Promise<{ sent: number[]; error?: unknown }> {
    const sent: number[] = [];
    for (const row of rows) {
      try {
        await bus.publish(row.subject, row.payload, {
          msgId: row.id,
          ...(row.headers && { headers: row.headers }),
        });
      } catch (error) {
        log.warn(
          { err: error, schema, eventId: row.id, subject: row.subject },
          "outbox publish failed; the event stays queued",
        );
        return { sent, error };
      }
      sent.push(row.seq);
    }
    return { sent };
  }

  async function mark(q: Queryable, seqs: number[]): Promise<void> {
    if (seqs.length > 0) await q.query(markSql, [seqs]);
  }

  async function roundOnce(): Promise<RoundResult> {
    if (db.kind === "postgres") {
      return db.transaction(async (tx) => {
        const { rows } = await tx.query<OutboxRow>(`${selectSql} for update skip locked`, [
          batchSize,
        ]);
        const outcome = await publishRows(rows);
        await mark(tx, outcome.sent);
        return { sent: outcome.sent.length, error: outcome.error, more: rows.length === batchSize };
      });
    }
    const { rows } = await db.query<OutboxRow>(selectSql, [batchSize]);
    const outcome = await publishRows(rows);
    await mark(db, outcome.sent);
    return { sent: outcome.sent.length, error: outcome.error, more: rows.length === batchSize };
  }

  function round(): Promise<RoundResult> {
    const next = roundChain.then(roundOnce, roundOnce);
    roundChain = next.catch(() => {});
    return next;
  }

  /** Sleeps for `ms`, or until kick()/stop() when `kickable`. */
  function pause(ms: number, kickable: boolean): Promise<void> {
    return new Promise((resolve) => {
      if (kickable && kicked) {
        kicked = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = () => {
        // While backing off from a failing bus, kicks wait for the backoff to end: every
        // commit kicks, and retrying on each would hammer a bus that is down.
        if (kickable || !running) done();
      };
    });
  }

  async function loop(): Promise<void> {
    while (running) {
      let result: RoundResult;
      try {
        result = await round();
      } catch (error) {
        // The database itself failed (connection lost): same backoff as a bus failure.
        log.warn({ err: error, schema }, "outbox round failed");
        result = { sent: 0, error, more: false };
      }
      if (!running) break;
      if (result.error !== undefined) {
        failures++;
        await pause(Math.min(pollIntervalMs * 2 ** failures, maxBackoffMs), false);
        continue;
      }
      if (failures > 0) log.info({ schema, sent: result.sent }, "outbox publishing again");
      failures = 0;
      if (result.more) continue;
      await prune();
      await pause(pollIntervalMs, true);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      kicked = false;
      loopDone = loop();
    },

    kick() {
      // Several commits in a row coalesce into one extra round: the flag is consumed by
      // the next pause, or wakes a sleeping loop now.
      kicked = true;
      if (wake) {
        kicked = false;
        wake();
      }
    },

    async flush() {
      let total = 0;
      for (;;) {
        const result = await round();
        total += result.sent;
        if (result.error !== undefined) throw result.error;
        // Stop only after a round found nothing: rows committed while a round ran are
        // picked up by the next one.
        if (result.sent === 0) return total;
      }
    },

    async stop() {
      if (!running) return;
      running = false;
      wake?.();
      await loopDone;
      await roundChain;
    },
  };
}
