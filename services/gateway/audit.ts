import { auditSubject, type Bus } from "../../libs/bus/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import { unknownTenant } from "../../libs/names/index.ts";
import { encodeGatewayRequestEvent } from "./audit-event.ts";
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
  /** Events published concurrently per flush round. */
  batchSize?: number;
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

/** An event built and encoded, kept for a retry with the same id (so the bus dedupes). */
interface EncodedEvent {
  readonly id: string;
  readonly subject: string;
  readonly data: Uint8Array;
}

type Queued = Exchange | EncodedEvent;

/**
 * Creates the audit publisher: a fixed-size ring buffer that the request path appends to,
 * and a loop that turns exchanges into `latchkey.events.v1.AuditEvent`s and publishes them
 * on `latchkey.audit.{tenant}.request` with the event id as message id. While the bus is
 * down events wait in the ring; when it is full the oldest go first, counted and logged at
 * warn once per flush round (never once per event). The request path never awaits NATS.
 */
export function createAuditPublisher(options: AuditPublisherOptions): AuditPublisher {
  const { bus, log, capacity, flushMs, ids } = options;
  const batchSize = options.batchSize ?? 128;
  const ring: (Queued | undefined)[] = new Array(capacity);
  let head = 0; // index of the oldest queued event
  let count = 0;
  let dropped = 0;
  let droppedReported = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let flushing: Promise<void> | undefined;

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

  async function flushOnce(): Promise<void> {
    while (count > 0) {
      const batch = take(batchSize).map((item) => encode(item, ids));
      const results = await Promise.allSettled(
        batch.map((event) => bus.publish(event.subject, event.data, { msgId: event.id })),
      );
      const failed: EncodedEvent[] = [];
      let firstError: unknown;
      results.forEach((result, i) => {
        if (result.status === "rejected") {
          failed.push(batch[i] as EncodedEvent);
          firstError ??= result.reason;
        }
      });
      if (failed.length > 0) {
        requeue(failed);
        log.warn(
          { failed: failed.length, pending: count, err: errorName(firstError) },
          "audit events not published; retrying",
        );
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
  }

  function flush(): Promise<void> {
    flushing ??= flushOnce()
      .catch((err) => log.error({ err: errorName(err) }, "audit flush failed"))
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
          await flush();
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
  return { id, subject: auditSubject(tenant, "request"), data };
}
