import { auditSubject, type Bus } from "../../libs/bus/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import { unknownTenant } from "../../libs/names/index.ts";
import { encodeAuditEventBatch, encodeGatewayRequestEvent } from "./audit-event.ts";
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
  /** Events taken from the buffer per flush round (default 512). */
  roundSize?: number;
  /** Largest batch message in bytes (default 256 KiB, well under NATS's 1 MiB max_payload). */
  maxBatchBytes?: number;
}

/** Step 9 of the request path: one audit event per request, published off the hot path. */
export interface AuditPublisher {
  /** Queues the finished exchange; never waits, never throws. */
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

/** An event built and encoded, kept for a retry with the same bytes and id. */
interface EncodedEvent {
  readonly id: string;
  readonly tenant: string;
  readonly data: Uint8Array;
}

/** One message: consecutive events of one tenant. */
interface Batch {
  readonly tenant: string;
  readonly events: EncodedEvent[];
  bytes: number;
}

type Queued = Exchange | EncodedEvent;

/**
 * Creates the audit publisher: a fixed-size ring buffer that the request path appends to,
 * and a loop that turns exchanges into `latchkey.events.v1.AuditEvent`s and publishes them
 * a round at a time, grouped by tenant, as `AuditEventBatch` messages on
 * `latchkey.audit.{tenant}.request` (message id: the batch's first event id). One message per
 * few hundred requests rather than one per request is what keeps the publish, NATS and the
 * audit ingest cheap. While the bus is down events wait in the ring; when it is full the
 * oldest go first, counted and logged at warn once per flush round (never once per event).
 * The request path never awaits NATS.
 */
export function createAuditPublisher(options: AuditPublisherOptions): AuditPublisher {
  const { bus, log, capacity, flushMs, ids } = options;
  const roundSize = options.roundSize ?? 512;
  const maxBatchBytes = options.maxBatchBytes ?? 256 * 1024;
  const ring: (Queued | undefined)[] = new Array(capacity);
  let head = 0; // index of the oldest queued event
  let count = 0;
  let dropped = 0;
  let droppedReported = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let flushing: Promise<boolean> | undefined;

  function push(item: Queued): void {
    if (count === capacity) {
      ring[head] = undefined;
      head = (head + 1) % capacity;
      count--;
      dropped++;
    }
    ring[(head + count) % capacity] = item;
    count++;
  }

  function take(max: number): Queued[] {
    const n = Math.min(max, count);
    const out: Queued[] = new Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = ring[head] as Queued;
      ring[head] = undefined;
      head = (head + 1) % capacity;
    }
    count -= n;
    return out;
  }

  /** Puts failed events back in front, oldest first, as long as there is room. */
  function requeue(items: EncodedEvent[]): void {
    for (let i = items.length - 1; i >= 0; i--) {
      if (count === capacity) {
        dropped += i + 1;
        return;
      }
      head = (head - 1 + capacity) % capacity;
      ring[head] = items[i];
      count++;
    }
  }

  /** Publishes what is queued; false when a publish failed (the events are queued again). */
  async function flushOnce(): Promise<boolean> {
    // What is queued now, not what arrives while publishing: those wait for the next tick,
    // so a busy gateway sends one round per tick rather than a stream of small messages.
    let remaining = count;
    let ok = true;
    while (remaining > 0 && count > 0) {
      const items = take(Math.min(roundSize, remaining));
      remaining -= items.length;
      const batches = group(
        items.map((item) => encode(item, ids)),
        maxBatchBytes,
      );
      const results = await Promise.allSettled(
        batches.map((batch) =>
          bus.publish(
            auditSubject(batch.tenant, "request"),
            encodeAuditEventBatch(batch.events.map((event) => event.data)),
            { msgId: (batch.events[0] as EncodedEvent).id },
          ),
        ),
      );
      const failed: EncodedEvent[] = [];
      let firstError: unknown;
      results.forEach((result, i) => {
        if (result.status === "rejected") {
          failed.push(...(batches[i] as Batch).events);
          firstError ??= result.reason;
        }
      });
      if (failed.length > 0) {
        // Back in front, each tenant's in order, so the retry usually forms the same
        // batches (same message ids: JetStream drops one that was stored after all).
        requeue(failed);
        log.warn(
          { failed: failed.length, pending: count, err: errorName(firstError) },
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
    record(exchange) {
      push(exchange);
    },
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

/**
 * Builds the audit event of a finished exchange. By construction it carries no secret:
 * the exchange holds the token's resource name (not its secret), the path without its
 * query string, and the credential's version (not its material).
 */
function encode(item: Queued, ids: IdSource): EncodedEvent {
  if (!("requestId" in item)) return item;
  const tenant = item.tenant === "" ? unknownTenant : item.tenant;
  const id = ids.eventId(item.startMs);
  const data = encodeGatewayRequestEvent({
    id,
    tenant,
    timeMs: item.startMs,
    traceId: item.traceId,
    requestId: item.requestId,
    token: item.tokenName,
    upstream: item.slug,
    method: item.method,
    path: item.path,
    decision: item.decision,
    reason: item.reason,
    status: item.status,
    durationUs: item.durationUs,
    requestBytes: item.requestBytes,
    responseBytes: item.responseBytes,
    clientAddress: item.clientAddress,
    policyVersion: item.policyVersion,
    dryRunRuleIds: item.dryRunRuleIds,
    credentialVersion: item.credentialVersion,
  });
  return { id, tenant, data };
}

/**
 * Splits a round's events into batches: one per tenant, in the order of each tenant's first
 * event, or more when a tenant's events pass `maxBytes` of payload (an event larger than that
 * still goes, alone). Each tenant's events keep their order.
 */
function group(events: readonly EncodedEvent[], maxBytes: number): Batch[] {
  const batches: Batch[] = [];
  const open = new Map<string, Batch>();
  for (const event of events) {
    let batch = open.get(event.tenant);
    if (batch === undefined || batch.bytes + event.data.byteLength > maxBytes) {
      batch = { tenant: event.tenant, events: [], bytes: 0 };
      open.set(event.tenant, batch);
      batches.push(batch);
    }
    batch.events.push(event);
    batch.bytes += event.data.byteLength;
  }
  return batches;
}
