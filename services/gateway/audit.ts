import { auditSubject, type Bus } from "../../libs/bus/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import { unknownTenant } from "../../libs/names/index.ts";
import {
  entryLength,
  firstEventId,
  type GatewayRequestEvent,
  gatewayRequestEntryBound,
  writeGatewayRequestEntry,
} from "./audit-event.ts";
import { errorName } from "./error-name.ts";
import type { Exchange } from "./exchange.ts";
import type { IdSource } from "./request-ids.ts";

/** Options for createAuditPublisher. */
export interface AuditPublisherOptions {
  bus: Bus;
  log: Logger;
  ids: IdSource;
  /** Events held while waiting for the bus; past it the oldest are dropped (and counted). */
  capacity: number;
  /** Time between flushes. */
  flushMs: number;
  /** Events per publish round: whole batches, oldest first, until a round holds this many (default 512). */
  roundSize?: number;
  /** Largest batch message in bytes (default 256 KiB, well under NATS's 1 MiB max_payload). */
  maxBatchBytes?: number;
}

/** Step 9 of the request path: one audit event per request, published off the hot path. */
export interface AuditPublisher {
  /** Encodes the finished exchange's event into its tenant's batch; never waits, never throws. */
  record(exchange: Exchange): void;
  /** Starts the background flusher. */
  start(): void;
  /** Stops the flusher after a last flush (bounded by `timeoutMs`). */
  stop(timeoutMs: number): Promise<void>;
  /** Publishes everything queued now; resolves when done (tests, shutdown). */
  flush(): Promise<void>;
  /** Events dropped because the buffer was full, since start. */
  readonly dropped: number;
  /** Events waiting to be published. */
  readonly pending: number;
}

/**
 * One message being built or waiting for the bus: consecutive events of one tenant, encoded as
 * `AuditEventBatch` entries in `bytes[start, end)`.
 */
interface Batch {
  readonly tenant: string;
  bytes: Buffer;
  /** Offset of the oldest event still queued (dropping the oldest event moves it on). */
  start: number;
  end: number;
  events: number;
  /** Takes no more events: it is full, or a flush began after it was opened. */
  sealed: boolean;
}

/** A new batch's first buffer when no spare one is left; it doubles as events arrive. */
const firstBatchBytes = 2048;
/** Buffers of published batches kept for new ones (they have grown to a busy tenant's size). */
const maxSpareBuffers = 8;

/**
 * Creates the audit publisher. The request path encodes each finished exchange straight into
 * its tenant's open batch (a growing buffer of `AuditEventBatch` entries), so nothing of the
 * request stays on the JavaScript heap while it waits for the bus; a loop publishes the
 * batches every `flushMs` as `AuditEventBatch` messages on `latchkey.audit.{tenant}.request`
 * (message id: the batch's first event id). One message per few hundred requests rather than
 * one per request is what keeps the publish, NATS and the audit ingest cheap. A batch whose
 * publish fails is published again as it is (same bytes, same message id: JetStream drops it
 * if it was stored after all). While the bus is down events wait; past `capacity` the oldest
 * go first, counted and logged at warn once per flush round (never once per event). The
 * request path never awaits NATS.
 */
export function createAuditPublisher(options: AuditPublisherOptions): AuditPublisher {
  const { bus, log, capacity, flushMs, ids } = options;
  const roundSize = options.roundSize ?? 512;
  const maxBatchBytes = options.maxBatchBytes ?? 256 * 1024;
  /** Every batch not being published, oldest first; a tenant's open batch is the last of its. */
  const queue: Batch[] = [];
  const open = new Map<string, Batch>();
  const spare: Buffer[] = [];
  let count = 0; // events in `queue`
  let dropped = 0;
  let droppedReported = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let flushing: Promise<boolean> | undefined;

  function record(exchange: Exchange): void {
    const tenant = exchange.tenant === "" ? unknownTenant : exchange.tenant;
    // By construction no secret: the exchange holds the token's resource name (not its
    // secret), the path without its query string, the credential's version (not its material).
    const event: GatewayRequestEvent = {
      id: ids.eventId(exchange.startMs),
      tenant,
      timeMs: exchange.startMs,
      traceId: exchange.traceId,
      requestId: exchange.requestId,
      token: exchange.tokenName,
      upstream: exchange.slug,
      method: exchange.method,
      path: exchange.path,
      decision: exchange.decision,
      reason: exchange.reason,
      status: exchange.status,
      durationUs: exchange.durationUs,
      requestBytes: exchange.requestBytes,
      responseBytes: exchange.responseBytes,
      clientAddress: exchange.clientAddress,
      policyVersion: exchange.policyVersion,
      dryRunRuleIds: exchange.dryRunRuleIds,
      credentialVersion: exchange.credentialVersion,
    };
    if (count === capacity) dropOldest();
    const bound = gatewayRequestEntryBound(event);
    let batch = open.get(tenant) ?? openBatch(tenant, bound);
    if (batch.end + bound > batch.bytes.byteLength) grow(batch, bound);
    const start = batch.end;
    const end = writeGatewayRequestEntry(event, batch.bytes, start);
    if (end - batch.start > maxBatchBytes && batch.events > 0) {
      // Past the message limit with this event: the batch is full without it, and the
      // event opens the tenant's next one (alone if it is larger than the limit itself).
      batch.sealed = true;
      open.delete(tenant);
      const next = openBatch(tenant, end - start);
      batch.bytes.copy(next.bytes, 0, start, end);
      next.end = end - start;
      batch = next;
    } else {
      batch.end = end;
    }
    batch.events++;
    count++;
  }

  /** A new open batch for `tenant` with room for `size` bytes, on a spare buffer if one fits. */
  function openBatch(tenant: string, size: number): Batch {
    let bytes = spare.pop();
    if (bytes === undefined || bytes.byteLength < size) {
      bytes = Buffer.allocUnsafe(Math.max(firstBatchBytes, size));
    }
    const batch: Batch = { tenant, bytes, start: 0, end: 0, events: 0, sealed: false };
    open.set(tenant, batch);
    queue.push(batch);
    return batch;
  }

  /** Moves the batch to a buffer with room for `size` more bytes (at least twice as large). */
  function grow(batch: Batch, size: number): void {
    const used = batch.end - batch.start;
    const bytes = Buffer.allocUnsafe(Math.max(2 * batch.bytes.byteLength, used + size));
    batch.bytes.copy(bytes, 0, batch.start, batch.end);
    batch.bytes = bytes;
    batch.start = 0;
    batch.end = used;
  }

  function dropFirst(batch: Batch): void {
    batch.start += entryLength(batch.bytes, batch.start);
    batch.events--;
    dropped++;
  }

  /** Drops the oldest queued event: the first of the oldest batch. */
  function dropOldest(): void {
    const batch = queue[0] as Batch;
    dropFirst(batch);
    count--;
    if (batch.events === 0) {
      queue.shift();
      if (open.get(batch.tenant) === batch) open.delete(batch.tenant);
    }
  }

  /** Takes sealed batches off the front until the round holds `roundSize` events. */
  function takeRound(): Batch[] {
    const round: Batch[] = [];
    let events = 0;
    while (events < roundSize && queue[0]?.sealed === true) {
      const batch = queue.shift() as Batch;
      round.push(batch);
      events += batch.events;
      count -= batch.events;
    }
    return round;
  }

  /** Puts failed batches back in front, oldest first; past capacity their oldest events go. */
  function requeue(batches: readonly Batch[]): void {
    for (let i = batches.length - 1; i >= 0; i--) {
      const batch = batches[i] as Batch;
      while (batch.events > 0 && count + batch.events > capacity) dropFirst(batch);
      if (batch.events === 0) continue;
      queue.unshift(batch);
      count += batch.events;
    }
  }

  function publish(batch: Batch): Promise<unknown> {
    return bus.publish(
      auditSubject(batch.tenant, "request"),
      batch.bytes.subarray(batch.start, batch.end),
      { msgId: firstEventId(batch.bytes, batch.start) },
    );
  }

  /** Publishes what is queued; false when a publish failed (its batch is queued again). */
  async function flushOnce(): Promise<boolean> {
    // What is queued now, not what arrives while publishing: those wait for the next tick,
    // so a busy gateway sends one round per tick rather than a stream of small messages.
    for (const batch of open.values()) batch.sealed = true;
    open.clear();
    let ok = true;
    while (queue[0]?.sealed === true) {
      const round = takeRound();
      const results = await Promise.allSettled(round.map(publish));
      const failed: Batch[] = [];
      let firstError: unknown;
      results.forEach((result, i) => {
        const batch = round[i] as Batch;
        if (result.status === "rejected") {
          failed.push(batch);
          firstError ??= result.reason;
        } else if (spare.length < maxSpareBuffers) {
          spare.push(batch.bytes); // the bus is done with the bytes once the publish resolved
        }
      });
      if (failed.length > 0) {
        requeue(failed);
        log.warn(
          {
            failed: failed.reduce((sum, batch) => sum + batch.events, 0),
            pending: count,
            err: errorName(firstError),
          },
          "audit events not published; retrying",
        );
        ok = false;
        break;
      }
    }
    if (dropped > droppedReported) {
      log.warn(
        { dropped: dropped - droppedReported, total: dropped },
        "audit buffer full; oldest events dropped",
      );
      droppedReported = dropped;
    }
    return ok;
  }

  function flush(): Promise<boolean> {
    flushing ??= flushOnce()
      .catch((err) => {
        log.error({ err: errorName(err) }, "audit flush failed");
        return false;
      })
      .finally(() => {
        flushing = undefined;
      });
    return flushing;
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      void flush().finally(schedule);
    }, flushMs);
    timer.unref();
  }

  return {
    record,
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop(timeoutMs) {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        (async () => {
          await flushing;
          // Until empty: events recorded during a flush (requests cut at the drain timeout)
          // wait for the next one. A failed publish (bus down) ends it.
          let ok = true;
          while (ok && count > 0) ok = await flush();
        })(),
        new Promise<void>((resolve) => {
          timeout = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timeout);
      if (count > 0) log.warn({ pending: count }, "audit events not published before shutdown");
    },
    flush: async () => {
      await flushing;
      await flush();
    },
    get dropped() {
      return dropped;
    },
    get pending() {
      return count;
    },
  };
}
