import type { Bus } from "../bus/types.ts";
import type { Db, Queryable } from "../db/types.ts";
import type { ChangeAction, ResourceType } from "../gen/latchkey/events/v1/events_pb.js";

/** One event to publish once the surrounding transaction commits. */
export interface OutboxEvent {
  /** Event id (`evt_...`), used as the NATS message id so a republish is dropped. */
  id: string;
  subject: string;
  payload: Uint8Array;
  headers?: Record<string, string>;
}

/** Writes events into `{schema}.outbox` inside the caller's transaction. */
export type EnqueueFn = (tx: Queryable, schema: string, event: OutboxEvent) => Promise<void>;

/** The relay that publishes committed outbox rows and marks them sent. */
export interface OutboxRelay {
  start(): void;
  /** Wakes the relay now (call after a commit) instead of waiting for the next poll. */
  kick(): void;
  /** Publishes everything pending, for tests and shutdown; resolves with the count sent. */
  flush(): Promise<number>;
  stop(): Promise<void>;
}

/** The logging the relay needs; a pino Logger fits. */
export interface OutboxLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Options for createOutboxRelay. */
export interface OutboxRelayOptions {
  db: Db;
  /** The service schema holding the outbox table (`token`, `policy`, `vault`). */
  schema: string;
  bus: Bus;
  log: OutboxLogger;
  /** How often to look for rows when nobody kicks (default 250 ms). */
  pollIntervalMs?: number;
  /** Rows published per round (default 100). */
  batchSize?: number;
  /** Longest wait between rounds while publishing keeps failing (default 30 s). */
  maxBackoffMs?: number;
  /**
   * How long sent rows are kept before the relay deletes them (default 1 hour): long
   * enough to inspect what was published, short enough that the table stays small.
   */
  retentionMs?: number;
}

/** A change to announce with enqueueChange. */
export interface ChangeInput {
  tenant: string;
  /** Resource name, e.g. `tenants/acme/tokens/tok_...`. */
  resource: string;
  resourceType: ResourceType;
  action: ChangeAction;
  /** Who did it: the admin key id (`actorOf(principal)`). */
  actor: string;
  /** The resource's version after the change, when it has one (policy sets, credentials). */
  version?: number | bigint;
  /** When the change happened (default now): services with an injected clock pass it. */
  time?: Date;
}
