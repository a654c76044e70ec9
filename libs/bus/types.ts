/** Stream names and the subjects they capture (DESIGN.md §5). */
export const streams = {
  // Seven days gives the audit service a week of downtime before an event could be lost;
  // once ingested, events live in PostgreSQL, so the stream is only a buffer.
  audit: { name: "LATCHKEY_AUDIT", subjects: ["latchkey.audit.>"], maxAgeMs: 7 * 86_400_000 },
  // Change events matter for seconds to gateways, but the audit service ingests them too.
  change: { name: "LATCHKEY_CHANGE", subjects: ["latchkey.change.>"], maxAgeMs: 7 * 86_400_000 },
} as const;

export type StreamKey = keyof typeof streams;

/** A message as a handler sees it. */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Message headers (e.g. `traceparent`), lower-case names. */
  headers: Record<string, string>;
}

/** Options for Bus.publish. */
export interface PublishOptions {
  /** Message id (the event id): a second publish with the same id is dropped as a duplicate. */
  msgId: string;
  headers?: Record<string, string>;
}

/** Options for Bus.consume. */
export interface ConsumeOptions {
  stream: StreamKey;
  /** Durable consumer name: survives restarts, one position shared by every replica. */
  durable: string;
  /**
   * Called for each message, at least once. Resolving acknowledges it; throwing asks for
   * redelivery later. Handlers must therefore be idempotent.
   */
  handler: (message: BusMessage) => Promise<void>;
  /** Messages fetched per pull (default 256). */
  batch?: number;
  /**
   * Handlers running at once for this consumer (default 1: one message at a time, in
   * stream order). With N > 1 the consumer hands out the next message while up to N
   * earlier ones are still being handled, each acknowledged when its own handler resolves,
   * so completion order is not stream order. One consumer with concurrency N does the work
   * of N competing consumers on the same durable with a single pull subscription.
   */
  concurrency?: number;
}

/** A running subscription or consumer. */
export interface Subscription {
  /** Stops receiving; in-flight handlers finish first. */
  stop(): Promise<void>;
}

/**
 * The event bus: NATS JetStream in a cluster, an in-process implementation with the same
 * semantics (durable positions, duplicate ids dropped, ack/redeliver) in embedded mode.
 */
export interface Bus {
  readonly kind: "nats" | "memory";
  /**
   * Publishes to a stream's subject; resolves once the stream stored it. By then the bus has
   * copied or sent `data`, so the caller may reuse its buffer.
   */
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<void>;
  /** Starts a durable, at-least-once consumer. */
  consume(options: ConsumeOptions): Subscription;
  /**
   * Live subscription with no durability (cache invalidation): receives messages published
   * from now on whose subject matches `subject` (NATS wildcards `*` and `>`).
   */
  subscribe(subject: string, handler: (message: BusMessage) => void): Subscription;
  /** Drains and closes. */
  close(): Promise<void>;
}

/** Options for openBus. */
export interface OpenBusOptions {
  /** NATS URL; unset selects the in-process bus. */
  url?: string;
  /** Connection name shown by the NATS server. */
  name?: string;
  /**
   * Isolates an installation on a shared NATS server: with namespace `x`, stream
   * LATCHKEY_AUDIT becomes LATCHKEY_AUDIT_X and subject `latchkey.audit.>` becomes
   * `x.latchkey.audit.>`. Callers always use the canonical subjects; the bus maps them.
   */
  namespace?: string;
  /** Where consumer failures and reconnects are reported (a `bus` child logger by default). */
  log?: BusLogger;
  /**
   * First redelivery delay after a handler throws (default 500 ms); it doubles with each
   * failed delivery of the same message, up to 30 s.
   */
  redeliveryDelayMs?: number;
}

/** The logging a bus needs; a pino Logger fits. */
export interface BusLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How long a message id is remembered to drop a duplicate publish (JetStream `duplicate_window`). */
export const duplicateWindowMs = 120_000;

/** Subject of a gateway audit event: `latchkey.audit.{tenant}.{kind}`. */
export function auditSubject(tenant: string, kind: string): string {
  return `latchkey.audit.${tenant}.${kind}`;
}

/** Subject of a change event: `latchkey.change.{tenant}.{resource}` (token, upstream, ...). */
export function changeSubject(tenant: string, resource: string): string {
  return `latchkey.change.${tenant}.${resource}`;
}
