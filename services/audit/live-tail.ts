import type { Bus, BusMessage, Subscription } from "../../libs/bus/types.ts";
import { DomainError } from "../../libs/errors/index.ts";
import type { AuditEvent } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { matches, type Selection } from "./event-filter.ts";
import {
  auditBatchToRows,
  changePayloadToRow,
  type EventRow,
  MalformedEventError,
  rowEvent,
} from "./event-row.ts";

/** Options for tailEvents. */
export interface TailOptions {
  bus: Bus;
  log: Logger;
  tenant: string;
  selection: Selection;
  /** Ends the tail cleanly (the client cancelled). */
  signal: AbortSignal;
  /** Ends the tail with Unavailable (the service is stopping). */
  shutdown?: AbortSignal;
  /** Events held for a slow client before the tail gives up with ResourceExhausted. */
  maxBuffered: number;
  /** Stands in for the wall clock. */
  clock?: () => Date;
}

/** How many recent event ids a tail remembers to drop republished duplicates. */
const recentIdsKept = 4096;

/**
 * Yields a tenant's events as they are published, filtered, until `signal` aborts.
 *
 * It subscribes to the tenant's audit and change subjects on the bus rather than listening
 * to this replica's ingest, so with several audit replicas every tail sees every event, not
 * only the share its own replica consumed. Live subscribers see each publish, including a
 * republish with the same id that JetStream drops as a duplicate (a gateway flushing its
 * spool, an outbox relay retrying): the tail remembers recent ids and skips those.
 *
 * Memory is bounded: when more than `maxBuffered` events wait for a slow client the tail
 * ends with ResourceExhausted rather than grow; the client can resume with ListEvents.
 */
export async function* tailEvents(options: TailOptions): AsyncGenerator<AuditEvent> {
  const { bus, log, tenant, selection, signal, maxBuffered } = options;
  const clock = options.clock ?? (() => new Date());
  const buffer: EventRow[] = [];
  const recentIds = new Set<string>();
  let overflowed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  /** Decodes a message's events; the ingest counts and logs malformed ones, a tail skips them. */
  const receive = (decode: () => EventRow[]) => {
    if (overflowed) return;
    let rows: EventRow[];
    try {
      rows = decode();
    } catch (err) {
      if (!(err instanceof MalformedEventError))
        log.warn({ err }, "live tail: cannot decode event");
      return;
    }
    for (const row of rows) accept(row);
  };

  const accept = (row: EventRow) => {
    if (overflowed) return;
    // The subject names the tenant, but the payload is what the log records: check both.
    if (row.tenant !== tenant || !matches(row, selection) || recentIds.has(row.id)) return;
    recentIds.add(row.id);
    if (recentIds.size > recentIdsKept) {
      const oldest = recentIds.values().next().value;
      if (oldest !== undefined) recentIds.delete(oldest);
    }
    if (buffer.length >= maxBuffered) {
      overflowed = true;
      buffer.length = 0;
    } else {
      buffer.push(row);
    }
    notify();
  };

  const subscriptions: Subscription[] = [];
  signal.addEventListener("abort", notify);
  options.shutdown?.addEventListener("abort", notify);
  try {
    if (selection.kind !== "change") {
      subscriptions.push(
        bus.subscribe(`latchkey.audit.${tenant}.>`, (m: BusMessage) =>
          receive(() => auditBatchToRows(m.data, clock()).rows),
        ),
      );
    }
    if (selection.kind !== "gateway_request") {
      subscriptions.push(
        bus.subscribe(`latchkey.change.${tenant}.>`, (m: BusMessage) =>
          receive(() => [changePayloadToRow(m.data, m.headers, clock())]),
        ),
      );
    }
    for (;;) {
      if (signal.aborted) return;
      if (options.shutdown?.aborted) {
        throw new DomainError("unavailable", "the audit service is shutting down; reconnect");
      }
      if (overflowed) {
        throw new DomainError(
          "resource_exhausted",
          `the client read too slowly: more than ${maxBuffered} events were waiting`,
        );
      }
      const row = buffer.shift();
      if (row) {
        yield rowEvent(row.bytes);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal.removeEventListener("abort", notify);
    options.shutdown?.removeEventListener("abort", notify);
    await Promise.all(subscriptions.map((s) => s.stop()));
  }
}
