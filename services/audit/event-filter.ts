import { invalidArgument } from "../../libs/errors/index.ts";
import { type EventFilter, EventKind } from "../../libs/gen/latchkey/audit/v1/audit_pb.js";
import { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { isResourceId, parseName } from "../../libs/names/index.ts";
import {
  type EventKindName,
  type EventRow,
  MalformedEventError,
  timestampMicros,
} from "./event-row.ts";

/**
 * A validated EventFilter: unset fields are undefined and match everything. ListEvents turns
 * it into SQL, StreamEvents applies it in memory; both read the same columns of EventRow so
 * a tail and a list of the same filter agree.
 */
export interface Selection {
  token?: string;
  upstream?: string;
  decision?: number;
  /** Inclusive, microseconds since the epoch. */
  startUs?: bigint;
  /** Exclusive, microseconds since the epoch. */
  endUs?: bigint;
  traceId?: string;
  kind?: EventKindName;
}

const decisions = new Set<number>(
  Object.values(GatewayDecision).filter((v): v is number => typeof v === "number"),
);

/** Validates a request's filter; throws InvalidArgument naming the bad field. */
export function parseFilter(filter: EventFilter | undefined): Selection {
  const selection: Selection = {};
  if (!filter) return selection;
  if (filter.token !== "") {
    // Validates the shape only: a token of another tenant simply matches nothing, because
    // every query is scoped to the caller's tenant.
    parseName(filter.token, "tokens");
    selection.token = filter.token;
  }
  if (filter.upstream !== "") {
    if (!isResourceId(filter.upstream))
      throw invalidArgument("filter.upstream is not a valid slug");
    selection.upstream = filter.upstream;
  }
  if (filter.decision !== GatewayDecision.UNSPECIFIED) {
    if (!decisions.has(filter.decision))
      throw invalidArgument("filter.decision is not a known decision");
    selection.decision = filter.decision;
  }
  if (filter.startTime) selection.startUs = filterTime(filter.startTime, "filter.start_time");
  if (filter.endTime) selection.endUs = filterTime(filter.endTime, "filter.end_time");
  if (
    selection.startUs !== undefined &&
    selection.endUs !== undefined &&
    selection.startUs >= selection.endUs
  ) {
    throw invalidArgument("filter.start_time must be before filter.end_time");
  }
  if (filter.traceId !== "") {
    const traceId = filter.traceId.toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(traceId))
      throw invalidArgument("filter.trace_id must be 32 hex characters");
    selection.traceId = traceId;
  }
  switch (filter.kind) {
    case EventKind.UNSPECIFIED:
      break;
    case EventKind.GATEWAY_REQUEST:
      selection.kind = "gateway_request";
      break;
    case EventKind.CHANGE:
      selection.kind = "change";
      break;
    default:
      throw invalidArgument("filter.kind is not a known kind");
  }
  return selection;
}

/** Whether a row passes the selection: the in-memory twin of the WHERE clause in store.ts. */
export function matches(row: EventRow, selection: Selection): boolean {
  return (
    (selection.token === undefined || row.token === selection.token) &&
    (selection.upstream === undefined || row.upstream === selection.upstream) &&
    (selection.decision === undefined || row.decision === selection.decision) &&
    (selection.startUs === undefined || row.timeUs >= selection.startUs) &&
    (selection.endUs === undefined || row.timeUs < selection.endUs) &&
    (selection.traceId === undefined || row.traceId === selection.traceId) &&
    (selection.kind === undefined || row.kind === selection.kind)
  );
}

function filterTime(ts: NonNullable<EventFilter["startTime"]>, field: string): bigint {
  try {
    return timestampMicros(ts);
  } catch (err) {
    if (err instanceof MalformedEventError) throw invalidArgument(`${field} is out of range`);
    throw err;
  }
}
