import type { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";

/** The fields of one gateway audit event (`AuditEvent` with detail `gateway_request`). */
export interface GatewayRequestEvent {
  id: string;
  tenant: string;
  timeMs: number;
  traceId: string;
  requestId: string;
  token: string;
  upstream: string;
  method: string;
  path: string;
  decision: GatewayDecision;
  reason: string;
  status: number;
  durationUs: number;
  requestBytes: number;
  responseBytes: number;
  clientAddress: string;
  policyVersion: number;
  dryRunRuleIds: readonly string[];
  credentialVersion: number;
}

// Wire types (protobuf encoding spec): varint and length-delimited are all this message uses.
const VARINT = 0;
const LEN = 2;

/**
 * The most bytes writeGatewayRequestEntry can write for `event`: room to reserve before
 * writing (a UTF-16 unit takes at most 3 bytes of UTF-8; numbers, tags and length prefixes at
 * most 11 bytes each).
 */
export function gatewayRequestEntryBound(event: GatewayRequestEvent): number {
  let chars =
    event.id.length +
    event.tenant.length +
    event.traceId.length +
    event.requestId.length +
    event.token.length +
    event.upstream.length +
    event.method.length +
    event.path.length +
    event.reason.length +
    event.clientAddress.length;
  let strings = 10;
  for (const id of event.dryRunRuleIds) {
    chars += id.length;
    strings++;
  }
  return 3 * chars + 11 * (strings + fixedFields);
}

/** Fields other than strings: 9 numbers, 2 in the timestamp, 4 tags with length prefixes. */
const fixedFields = 15;

/**
 * Writes `event` as one entry of a `latchkey.events.v1.AuditEventBatch { repeated AuditEvent
 * events = 1; }` (tag, length, the event as a binary `AuditEvent`) into `target` at `offset`,
 * which must have gatewayRequestEntryBound(event) bytes of room, and returns the offset after
 * it. The audit buffer appends entries to a tenant's batch as requests finish, so a batch
 * message is the concatenation of its entries.
 *
 * Straight onto the protobuf wire format, in one pass: each string goes in with one native
 * UTF-8 write behind a one-byte length guess, each nested message behind a two-byte guess,
 * and the few that turn out longer or shorter are moved into place. One event per request
 * makes this the gateway's most frequent encoding; protobuf-es' reflective `create()` +
 * `toBinary()` (and its BinaryWriter, which converts every int64 through BigInt) cost about
 * 10 µs an event.
 *
 * Field numbers are those of proto/latchkey/events/v1/events.proto; proto3 rules apply
 * (zero values are not written). audit-event.test.ts decodes the result with the generated
 * schema and compares the bytes with those the generated code writes.
 */
export function writeGatewayRequestEntry(
  event: GatewayRequestEvent,
  target: Buffer,
  offset: number,
): number {
  out = target;
  at = offset;
  tag(1, LEN); // AuditEventBatch.events
  const entry = open();
  str(1, event.id);
  str(2, event.tenant);
  const seconds = Math.floor(event.timeMs / 1000);
  const nanos = (event.timeMs - seconds * 1000) * 1_000_000;
  tag(3, LEN); // google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }
  varint(varintField(1, seconds) + varintField(2, nanos));
  num(1, seconds);
  num(2, nanos);
  str(4, event.traceId);
  tag(5, LEN); // GatewayRequest gateway_request = 5;
  const detail = open();
  str(1, event.requestId);
  str(2, event.token);
  str(3, event.upstream);
  str(4, event.method);
  str(5, event.path);
  num(6, event.decision);
  str(7, event.reason);
  num(8, event.status);
  num(9, event.durationUs);
  num(10, event.requestBytes);
  num(11, event.responseBytes);
  str(12, event.clientAddress);
  num(13, event.policyVersion);
  for (const id of event.dryRunRuleIds) str(14, id);
  num(15, event.credentialVersion);
  close(detail);
  close(entry);
  const end = at;
  out = empty;
  return end;
}

/**
 * The id of the first event of the entries at `offset` of `batch` (the entry's
 * `AuditEvent.id`, which writeGatewayRequestEntry writes first): a batch message's id, read
 * back from its bytes.
 */
export function firstEventId(batch: Buffer, offset: number): string {
  out = batch;
  at = offset + 1; // the entry's tag
  readVarint(); // the entry's length
  at++; // AuditEvent.id's tag
  const length = readVarint();
  const id = batch.toString("latin1", at, at + length);
  out = empty;
  return id;
}

/** Length of the entry at `offset` of `batch`, tag and length prefix included. */
export function entryLength(batch: Buffer, offset: number): number {
  out = batch;
  at = offset + 1;
  const length = readVarint();
  const end = at + length;
  out = empty;
  return end - offset;
}

// The buffer being written and the write position: module state rather than closures,
// because encoding is synchronous and closures per event cost more than the encoding.
const empty = Buffer.alloc(0);
let out: Buffer = empty;
let at = 0;

function varint(value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[at++] = rest;
}

/** Reads the varint at `at` (the wire format's own output: at most 8 bytes here). */
function readVarint(): number {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = out[at++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 0x80;
  }
}

function tag(field: number, wireType: number): void {
  varint(field * 8 + wireType);
}

function str(field: number, value: string): void {
  if (value === "") return;
  tag(field, LEN);
  const start = at;
  const length = out.write(value, start + 1);
  at = start + 1 + length;
  if (length >= 0x80) moveInto(start, 1, length);
  else out[start] = length;
}

/** Reserves a two-byte length prefix for a nested message; returns where it starts. */
function open(): number {
  const start = at;
  at += 2;
  return start;
}

/** Writes the length of the message opened at `start`, moving it when two bytes was wrong. */
function close(start: number): void {
  moveInto(start, 2, at - start - 2);
}

/**
 * Writes `length` as the varint at `start`, where `reserved` bytes were left for it before
 * the `length` bytes just written; moves those bytes when the varint needs another size.
 */
function moveInto(start: number, reserved: number, length: number): void {
  const size = varintSize(length);
  if (size !== reserved) out.copyWithin(start + size, start + reserved, at);
  at = start;
  varint(length);
  at += length;
}

function num(field: number, value: number): void {
  if (value === 0) return;
  tag(field, VARINT);
  varint(value);
}

/** Bytes of a non-negative varint (every number here is a non-negative integer). */
function varintSize(value: number): number {
  let size = 1;
  let rest = value;
  while (rest >= 0x80) {
    rest = Math.floor(rest / 0x80);
    size++;
  }
  return size;
}

function varintField(field: number, value: number): number {
  return value === 0 ? 0 : varintSize(field * 8) + varintSize(value);
}
