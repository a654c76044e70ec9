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
 * Encodes a gateway request as a binary `latchkey.events.v1.AuditEvent`, straight onto the
 * protobuf wire format. One event per request makes this the gateway's most frequent
 * encoding; protobuf-es' reflective `create()` + `toBinary()` (and its BinaryWriter, which
 * converts every int64 through BigInt) cost about 10 µs an event, more than the whole
 * request path's own steps, against about 1 µs here.
 *
 * Field numbers are those of proto/latchkey/events/v1/events.proto; proto3 rules apply
 * (zero values are not written). audit-event.test.ts decodes the result with the generated
 * schema and compares it with the message built the reflective way.
 */
export function encodeGatewayRequestEvent(event: GatewayRequestEvent): Uint8Array {
  const seconds = Math.floor(event.timeMs / 1000);
  const nanos = (event.timeMs - seconds * 1000) * 1_000_000;
  const timeSize = varintField(1, seconds) + varintField(2, nanos);

  let detailSize =
    stringField(1, event.requestId) +
    stringField(2, event.token) +
    stringField(3, event.upstream) +
    stringField(4, event.method) +
    stringField(5, event.path) +
    varintField(6, event.decision) +
    stringField(7, event.reason) +
    varintField(8, event.status) +
    varintField(9, event.durationUs) +
    varintField(10, event.requestBytes) +
    varintField(11, event.responseBytes) +
    stringField(12, event.clientAddress) +
    varintField(13, event.policyVersion) +
    varintField(15, event.credentialVersion);
  for (const id of event.dryRunRuleIds) detailSize += stringField(14, id);

  const size =
    stringField(1, event.id) +
    stringField(2, event.tenant) +
    1 +
    lengthPrefixed(timeSize) +
    stringField(4, event.traceId) +
    1 +
    lengthPrefixed(detailSize);

  out = Buffer.allocUnsafe(size);
  at = 0;
  str(1, event.id);
  str(2, event.tenant);
  tag(3, LEN); // google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }
  varint(timeSize);
  num(1, seconds);
  num(2, nanos);
  str(4, event.traceId);
  tag(5, LEN); // GatewayRequest gateway_request = 5;
  varint(detailSize);
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
  const encoded = out;
  out = empty;
  return encoded;
}

/**
 * Wraps encoded `AuditEvent`s as one encoded `latchkey.events.v1.AuditEventBatch { repeated
 * AuditEvent events = 1; }`: each event's bytes as they are, length-prefixed (the audit
 * service splits them back with libs/bus/audit-batch.ts and stores each event's bytes).
 */
export function encodeAuditEventBatch(events: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const event of events) size += 1 + lengthPrefixed(event.byteLength);
  out = Buffer.allocUnsafe(size);
  at = 0;
  for (const event of events) {
    tag(1, LEN);
    varint(event.byteLength);
    out.set(event, at);
    at += event.byteLength;
  }
  const encoded = out;
  out = empty;
  return encoded;
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

function tag(field: number, wireType: number): void {
  varint(field * 8 + wireType);
}

function str(field: number, value: string): void {
  if (value === "") return;
  tag(field, LEN);
  const length = utf8Length(value);
  varint(length);
  if (length === value.length) {
    // ASCII (ids, methods, paths, addresses): a byte per character, no encoder call.
    for (let i = 0; i < length; i++) out[at++] = value.charCodeAt(i);
  } else {
    at += out.write(value, at);
  }
}

/** UTF-8 length; the loop is cheaper than Buffer.byteLength for the short ASCII strings here. */
function utf8Length(value: string): number {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value);
  }
  return value.length;
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

function stringField(field: number, value: string): number {
  return value === "" ? 0 : varintSize(field * 8) + lengthPrefixed(utf8Length(value));
}

function lengthPrefixed(length: number): number {
  return varintSize(length) + length;
}
