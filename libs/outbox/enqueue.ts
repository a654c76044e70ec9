import { assertSchemaName } from "../db/migrate.ts";
import type { Queryable } from "../db/types.ts";
import type { OutboxEvent } from "./types.ts";

/**
 * Writes `event` into `{schema}.outbox` with the caller's transaction, so the event exists
 * exactly when the change it announces was committed. The relay publishes it afterwards.
 */
export async function enqueue(tx: Queryable, schema: string, event: OutboxEvent): Promise<void> {
  assertSchemaName(schema);
  await tx.query(
    `insert into ${schema}.outbox (id, subject, payload, headers) values ($1, $2, $3, $4::jsonb)`,
    [event.id, event.subject, event.payload, JSON.stringify(event.headers ?? {})],
  );
}
