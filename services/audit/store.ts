import { isUniqueViolation } from "../../libs/db/index.ts";
import type { Queryable } from "../../libs/db/types.ts";
import type { Selection } from "./event-filter.ts";
import { type EventRow, microsToIso } from "./event-row.ts";

/**
 * The batch INSERT of insertEvents, without a conflict clause. The time travels as
 * microseconds since the epoch (int8) and becomes a timestamptz by whole seconds plus
 * microseconds: both products stay exact in the double precision PostgreSQL multiplies
 * intervals in, up to the last microsecond of 9999.
 */
const insertSql = `INSERT INTO audit.events
       (id, tenant, time, kind, trace_id, token, upstream, decision, status, event)
     SELECT id, tenant,
            timestamptz 'epoch' + (time_us / 1000000) * interval '1 second'
              + (time_us % 1000000) * interval '1 microsecond',
            kind, trace_id, token, upstream, decision, status,
            substring($12::bytea FROM start FOR length)
       FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
                   $6::text[], $7::text[], $8::int4[], $9::int4[], $10::int4[], $11::int4[])
         AS t(id, tenant, time_us, kind, trace_id, token, upstream, decision, status, start, length)`;

/**
 * Stores a batch in one statement; rows already stored (same tenant and id) are skipped,
 * which is what makes redelivery harmless. Arrays (one per column) rather than a VALUES list
 * keep the statement text and parameter count fixed whatever the batch size. The events'
 * bytes travel as one bytea parameter, every event's bytes one after the other, which each
 * row takes its slice of (start and length arrays): binary on the wire, where an array of
 * base64 text cost the ingest and PostgreSQL an encoding, an escape and a parse per event.
 * The arrays go as array literals written here (arrayLiteral): node-postgres would
 * quote and regex-escape every element, numbers included, ~4 µs an event. Resolves with the
 * number of rows actually inserted.
 *
 * A plain INSERT is tried first: `ON CONFLICT DO NOTHING` makes PostgreSQL insert every row
 * speculatively, about 15% more of its CPU per row, for duplicates that only a redelivery
 * brings. When the plain INSERT meets a stored id (it then stores nothing), the batch is
 * written again with `ON CONFLICT` (PostgreSQL logs the failed attempt as an error). Not for
 * use inside a transaction: the failed attempt would abort it.
 */
export async function insertEvents(db: Queryable, rows: readonly EventRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  // 1-based offsets into the concatenated bytes, as substring() counts.
  const starts: number[] = [];
  let start = 1;
  for (const r of rows) {
    starts.push(start);
    start += r.bytes.byteLength;
  }
  const params = [
    arrayLiteral(rows, (r) => r.id, quoted),
    arrayLiteral(rows, (r) => r.tenant, quoted),
    arrayLiteral(rows, (r) => r.timeUs, String),
    arrayLiteral(rows, (r) => r.kind, quoted),
    arrayLiteral(rows, (r) => r.traceId, quoted),
    arrayLiteral(rows, (r) => r.token, quoted),
    arrayLiteral(rows, (r) => r.upstream, quoted),
    arrayLiteral(rows, (r) => r.decision, String),
    arrayLiteral(rows, (r) => r.status, String),
    `{${starts.join(",")}}`,
    arrayLiteral(rows, (r) => r.bytes.byteLength, String),
    Buffer.concat(rows.map((r) => r.bytes)),
  ];
  try {
    return (await db.query(insertSql, params)).rowCount;
  } catch (err) {
    if (!isUniqueViolation(err, "events_pkey")) throw err;
    return (await db.query(`${insertSql} ON CONFLICT (tenant, id) DO NOTHING`, params)).rowCount;
  }
}

/** Characters that must be escaped inside a quoted array element. */
const arrayEscaped = /["\\]/g;

/**
 * A PostgreSQL array literal of one column of `rows`: each value written by `element`, null
 * as NULL.
 */
function arrayLiteral<T>(
  rows: readonly EventRow[],
  value: (row: EventRow) => T | null,
  element: (v: T) => string,
): string {
  let out = "{";
  for (let i = 0; i < rows.length; i++) {
    const v = value(rows[i] as EventRow);
    if (i > 0) out += ",";
    out += v === null ? "NULL" : element(v);
  }
  return `${out}}`;
}

/**
 * A text element: always quoted (so commas, braces, spaces and the word NULL stay text), with
 * `"` and `\` escaped.
 */
const quoted = (v: string): string =>
  `"${v.includes('"') || v.includes("\\") ? v.replace(arrayEscaped, "\\$&") : v}"`;

/** A page of stored events: id and the recorded bytes. */
export interface StoredEvent {
  id: string;
  event: Uint8Array;
}

/**
 * A tenant's events matching the selection, newest first, strictly older than `beforeId`
 * when given (keyset pagination: rows inserted between pages neither repeat nor vanish).
 */
export async function listEvents(
  db: Queryable,
  tenant: string,
  selection: Selection,
  page: { beforeId?: string; limit: number },
): Promise<StoredEvent[]> {
  const params: unknown[] = [tenant];
  const where = ["tenant = $1"];
  const add = (clause: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  if (selection.token !== undefined) add((p) => `token = ${p}`, selection.token);
  if (selection.upstream !== undefined) add((p) => `upstream = ${p}`, selection.upstream);
  if (selection.decision !== undefined) add((p) => `decision = ${p}`, selection.decision);
  if (selection.startUs !== undefined) {
    add((p) => `time >= ${p}::timestamptz`, microsToIso(selection.startUs));
  }
  if (selection.endUs !== undefined)
    add((p) => `time < ${p}::timestamptz`, microsToIso(selection.endUs));
  if (selection.traceId !== undefined) add((p) => `trace_id = ${p}`, selection.traceId);
  if (selection.kind !== undefined) add((p) => `kind = ${p}`, selection.kind);
  if (page.beforeId !== undefined) add((p) => `id < ${p}`, page.beforeId);
  params.push(page.limit);
  const { rows } = await db.query<StoredEvent>(
    `SELECT id, event FROM audit.events
      WHERE ${where.join(" AND ")}
      ORDER BY id DESC
      LIMIT $${params.length}`,
    params,
  );
  return rows;
}

/** Request counts of one token, upstream and decision. */
export interface UsageCount {
  token: string;
  upstream: string;
  decision: number;
  count: number;
}

/** Counts a tenant's gateway requests in [startUs, endUs) by token, upstream and decision. */
export async function countUsage(
  db: Queryable,
  tenant: string,
  window: { startUs: bigint; endUs: bigint },
): Promise<UsageCount[]> {
  const { rows } = await db.query<UsageCount>(
    `SELECT coalesce(token, '') AS token, coalesce(upstream, '') AS upstream,
            coalesce(decision, 0) AS decision, count(*) AS count
       FROM audit.events
      WHERE tenant = $1 AND kind = 'gateway_request'
        AND time >= $2::timestamptz AND time < $3::timestamptz
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3`,
    [tenant, microsToIso(window.startUs), microsToIso(window.endUs)],
  );
  return rows;
}

/** Number of a tenant's stored events (tests and the ingest benchmark). */
export async function countEvents(db: Queryable, tenant: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*) AS n FROM audit.events WHERE tenant = $1",
    [tenant],
  );
  return Number(rows[0]?.n ?? 0);
}
