import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MalformedBatchError, splitAuditEventBatch } from "../../libs/bus/audit-batch.ts";
import {
  type AuditEvent,
  AuditEventSchema,
  ChangeEventSchema,
  ResourceType,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { isTenantId, unknownTenant } from "../../libs/names/index.ts";
import { readGatewayRequestColumns } from "./event-columns.ts";

/** The kinds of event the audit log stores, as in the `kind` column. */
export type EventKindName = "gateway_request" | "change";

/**
 * One audit event as stored: the indexed columns derived from the event, plus the event's
 * bytes exactly as recorded.
 */
export interface EventRow {
  id: string;
  tenant: string;
  /** Microseconds since the Unix epoch (PostgreSQL's timestamptz precision). */
  timeUs: bigint;
  kind: EventKindName;
  traceId: string | null;
  token: string | null;
  upstream: string | null;
  decision: number | null;
  status: number | null;
  /** The AuditEvent in protobuf binary. */
  bytes: Uint8Array;
}

/** Why a payload could not be recorded; never contains payload contents. */
export class MalformedEventError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "MalformedEventError";
  }
}

/** Event ids: a lower-case prefix, `_`, then base32/alphanumeric (evt_01jd...). */
const eventIdPattern = /^[a-z][a-z0-9]{0,15}_[0-9a-z]{1,100}$/;
const traceIdPattern = /^[0-9a-f]{32}$/;
const zeroTraceId = "0".repeat(32);
/** Indexed text longer than this is not something Latchkey produces: refuse it. */
const maxTextLength = 512;
/** 10000-01-01T00:00:00Z: past this PostgreSQL and ISO 8601 disagree on the year format. */
const maxSeconds = 253402300800n;

/**
 * Decodes one binary AuditEvent (an element of an audit-stream batch) into a row, keeping
 * the original bytes. Throws MalformedEventError when it cannot be recorded.
 */
export function auditPayloadToRow(data: Uint8Array, receivedAt: Date): EventRow {
  const columns = readGatewayRequestColumns(data);
  if (columns !== undefined) return eventToRow(columns, data);
  let event: AuditEvent;
  try {
    event = fromBinary(AuditEventSchema, data);
  } catch {
    throw new MalformedEventError("payload is not a latchkey.events.v1.AuditEvent");
  }
  // An event without a time is still worth keeping: record when it reached us instead,
  // re-encoding so the stored bytes and the time column agree.
  if (!event.time) {
    event.time = timestampFromDate(receivedAt);
    return eventToRow(event, toBinary(AuditEventSchema, event));
  }
  return eventToRow(event, data);
}

/** The rows of an audit-stream message, and why any of its events could not be recorded. */
export interface DecodedBatch {
  rows: EventRow[];
  /** One reason per event left out (never payload contents). */
  malformed: string[];
}

/**
 * Decodes an audit-stream payload (a binary AuditEventBatch) into rows, one per event, each
 * keeping its event's original bytes. An event that cannot be recorded is left out with its
 * reason, so one bad event never costs its batch-mates; a payload that is not a batch at all
 * throws MalformedEventError.
 */
export function auditBatchToRows(data: Uint8Array, receivedAt: Date): DecodedBatch {
  let events: Uint8Array[];
  try {
    events = splitAuditEventBatch(data);
  } catch (err) {
    if (err instanceof MalformedBatchError)
      throw new MalformedEventError(
        `payload is not a latchkey.events.v1.AuditEventBatch: ${err.message}`,
      );
    throw err;
  }
  if (events.length === 0) throw new MalformedEventError("batch has no events");
  const decoded: DecodedBatch = { rows: [], malformed: [] };
  for (const event of events) {
    try {
      decoded.rows.push(auditPayloadToRow(event, receivedAt));
    } catch (err) {
      if (!(err instanceof MalformedEventError)) throw err;
      decoded.malformed.push(err.message);
    }
  }
  return decoded;
}

/**
 * Decodes a change-stream payload (a binary ChangeEvent) and wraps it as the AuditEvent the
 * log records: same id, tenant and time, detail `change`. The trace id comes from the
 * message's W3C `traceparent` header, which the outbox carries from the admin request.
 */
export function changePayloadToRow(
  data: Uint8Array,
  headers: Record<string, string>,
  receivedAt: Date,
): EventRow {
  let change: ReturnType<typeof fromBinary<typeof ChangeEventSchema>>;
  try {
    change = fromBinary(ChangeEventSchema, data);
  } catch {
    throw new MalformedEventError("payload is not a latchkey.events.v1.ChangeEvent");
  }
  const event = create(AuditEventSchema, {
    id: change.id,
    tenant: change.tenant,
    time: change.time ?? timestampFromDate(receivedAt),
    traceId: traceIdFromTraceparent(headers.traceparent) ?? "",
    detail: { case: "change", value: change },
  });
  return eventToRow(event, toBinary(AuditEventSchema, event));
}

/**
 * The parts of an AuditEvent that its row indexes: an AuditEvent decoded by protobuf-es, or
 * the columns read straight off the wire by readGatewayRequestColumns.
 */
export interface EventColumns {
  id: string;
  tenant: string;
  time?: { seconds: bigint; nanos: number } | undefined;
  traceId: string;
  detail:
    | {
        case: "gatewayRequest";
        value: { token: string; upstream: string; decision: number; status: number };
      }
    | { case: "change"; value: { resourceType: ResourceType; resource: string } }
    | { case: undefined; value?: undefined };
}

/** Derives the indexed columns of an event whose binary form is `bytes`. */
export function eventToRow(event: EventColumns, bytes: Uint8Array): EventRow {
  if (!eventIdPattern.test(event.id)) throw new MalformedEventError("invalid event id");
  if (!isTenantId(event.tenant) && event.tenant !== unknownTenant)
    throw new MalformedEventError("invalid tenant");
  if (!event.time) throw new MalformedEventError("missing time");
  const timeUs = timestampMicros(event.time);
  const traceId =
    traceIdPattern.test(event.traceId) && event.traceId !== zeroTraceId ? event.traceId : null;
  const row: EventRow = {
    id: event.id,
    tenant: event.tenant,
    timeUs,
    kind: "gateway_request",
    traceId,
    token: null,
    upstream: null,
    decision: null,
    status: null,
    bytes,
  };
  switch (event.detail.case) {
    case "gatewayRequest": {
      const request = event.detail.value;
      row.token = indexedText(request.token, "token");
      row.upstream = indexedText(request.upstream, "upstream");
      row.decision = request.decision;
      row.status = request.status;
      return row;
    }
    case "change": {
      const change = event.detail.value;
      row.kind = "change";
      // Changes of a token are "events about this token": the token filter finds its
      // creation, rotation and revocation next to the requests it made.
      if (change.resourceType === ResourceType.TOKEN) {
        row.token = indexedText(change.resource, "resource");
      }
      return row;
    }
    default:
      throw new MalformedEventError("event has no detail");
  }
}

/** Decodes stored event bytes. */
export function rowEvent(bytes: Uint8Array): AuditEvent {
  return fromBinary(AuditEventSchema, bytes);
}

/**
 * The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`), or
 * undefined when absent or invalid (all-zero ids are invalid per W3C Trace Context §3.2.2.3).
 */
export function traceIdFromTraceparent(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(header.trim());
  const traceId = match?.[1];
  return traceId && traceId !== zeroTraceId ? traceId : undefined;
}

/**
 * A Timestamp's seconds and nanos as microseconds since the epoch; throws
 * MalformedEventError when out of range.
 */
export function timestampMicros(ts: { seconds: bigint; nanos: number }): bigint {
  if (ts.seconds < 0n || ts.seconds >= maxSeconds || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw new MalformedEventError("time out of range");
  }
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}

/** Microseconds since the epoch as an ISO 8601 string PostgreSQL parses without loss. */
export function microsToIso(us: bigint): string {
  const seconds = us / 1_000_000n;
  const fraction = (us % 1_000_000n).toString().padStart(6, "0");
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

/**
 * Empty means "none". PostgreSQL text cannot hold NUL, so a string with one would fail the
 * whole insert batch on every redelivery: refuse it here as malformed instead.
 */
function indexedText(value: string, field: string): string | null {
  if (value === "") return null;
  if (value.length > maxTextLength || value.includes("\u0000")) {
    throw new MalformedEventError(`invalid ${field}`);
  }
  return value;
}
