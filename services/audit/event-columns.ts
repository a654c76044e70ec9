import { isUtf8 } from "node:buffer";
import type { EventColumns } from "./event-row.ts";

/**
 * Reads the indexed columns of a binary `latchkey.events.v1.AuditEvent` carrying a
 * `gateway_request` straight off the protobuf wire format, for the ingest's most frequent
 * case: one event per gateway request. protobuf-es' reflective fromBinary() builds the whole
 * message (every string, the int64s through BigInt): 2.8-4.3 µs an event on the benchmark
 * machine, against 1.0-1.2 µs here. Only id, tenant, time, trace id and the request's token,
 * upstream, decision and status are needed to index the row, whose bytes are stored as they
 * came; the other string fields are checked (UTF-8) but not decoded.
 *
 * Returns undefined for anything but the plain shape the gateway writes (services/gateway/
 * audit-event.ts): a change, no time, a message field repeated (protobuf would merge them),
 * an unexpected wire type, a negative or oversized number, invalid UTF-8, a truncation.
 * The caller then decodes with protobuf-es, so every such event gets exactly the reflective
 * path's result or error. event-columns.test.ts checks the two agree on valid and on
 * corrupted events.
 *
 * Field numbers are those of proto/latchkey/events/v1/events.proto.
 */
export function readGatewayRequestColumns(data: Uint8Array): EventColumns | undefined {
  reader.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  reader.at = 0;
  reader.ok = true;
  try {
    return readEvent();
  } finally {
    reader.buf = empty;
  }
}

function readEvent(): EventColumns | undefined {
  const end = reader.buf.length;
  let id = "";
  let tenant = "";
  let traceId = "";
  let time: { seconds: bigint; nanos: number } | undefined;
  let request: { token: string; upstream: string; decision: number; status: number } | undefined;
  while (reader.ok && reader.at < end) {
    const key = tag();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 || field === 2 || field === 4) {
      if (!declared(wireType, LEN)) break;
      const value = string();
      if (field === 1) id = value;
      else if (field === 2) tenant = value;
      else traceId = value;
    } else if (field === 3) {
      if (wireType !== LEN || time !== undefined) return undefined;
      time = timestamp(lengthPrefix());
    } else if (field === 5) {
      if (wireType !== LEN || request !== undefined) return undefined;
      request = gatewayRequest(lengthPrefix());
    } else if (field === 6) {
      return undefined; // a change: the reflective path wraps and validates those
    } else {
      skip(wireType);
    }
  }
  if (!reader.ok || time === undefined || request === undefined) return undefined;
  return { id, tenant, time, traceId, detail: { case: "gatewayRequest", value: request } };
}

// Wire types (protobuf encoding spec).
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** Largest value read as a plain number: int32 fields above it are negative on the wire. */
const maxInt32 = 0x7fffffff;

// The buffer being read: module state rather than closures (reading is synchronous).
// `ok` turns false on anything the fast path leaves to protobuf-es: the loops stop there and
// the caller discards what was read.
const empty: Buffer = Buffer.alloc(0);
const reader = { buf: empty, at: 0, ok: true };

/** Largest field number protobuf allows. */
const maxFieldNumber = 2 ** 29 - 1;

/**
 * A field's key (number << 3 | wire type); field 0 or a number past the largest clears `ok`
 * (and reads as 0), so `key >>> 3` and `key & 7` are safe on what it returns.
 */
function tag(): number {
  const key = varint();
  if (key < 8 || key > maxFieldNumber * 8 + 7) {
    reader.ok = false;
    return 0;
  }
  return key;
}

/** A varint of up to 7 bytes (49 bits); anything longer (or truncated) clears `ok`. */
function varint(): number {
  const { buf } = reader;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (reader.at >= buf.length) break;
    const byte = buf[reader.at++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  reader.ok = false;
  return 0;
}

/** Reads a length prefix and returns where the length-delimited value ends. */
function lengthPrefix(): number {
  const length = varint();
  const end = reader.at + length;
  if (end > reader.buf.length) reader.ok = false;
  return end;
}

/**
 * A proto3 string, UTF-8 checked like protobuf-es does (it refuses invalid UTF-8); decoded
 * only when `keep` (the other string fields are checked and passed over).
 */
function string(keep = true): string {
  const end = lengthPrefix();
  if (!reader.ok) return "";
  const { buf, at } = reader;
  reader.at = end;
  for (let i = at; i < end; i++) {
    if ((buf[i] as number) >= 0x80) {
      if (!isUtf8(buf.subarray(at, end))) reader.ok = false;
      break;
    }
  }
  return keep ? buf.toString("utf8", at, end) : "";
}

/** Whether a known field came with its declared wire type; clears `ok` when it did not. */
function declared(wireType: number, expected: number): boolean {
  if (wireType !== expected) reader.ok = false;
  return reader.ok;
}

/** A non-negative int32 (a negative one is ten bytes on the wire: left to protobuf-es). */
function int32(): number {
  const value = varint();
  if (value > maxInt32) reader.ok = false;
  return value;
}

/** Skips a field this reader does not need; groups are left to protobuf-es. */
function skip(wireType: number): void {
  switch (wireType) {
    case VARINT:
      varint();
      return;
    case I64:
      reader.at += 8;
      break;
    case LEN:
      reader.at = lengthPrefix();
      break;
    case I32:
      reader.at += 4;
      break;
    default:
      reader.ok = false;
      return;
  }
  if (reader.at > reader.buf.length) reader.ok = false;
}

/** google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; } ending at `end`. */
function timestamp(end: number): { seconds: bigint; nanos: number } {
  let seconds = 0;
  let nanos = 0;
  while (reader.ok && reader.at < end) {
    const key = tag();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 || field === 2) {
      if (!declared(wireType, VARINT)) break;
      if (field === 1) seconds = varint();
      else nanos = int32();
    } else {
      skip(wireType);
    }
  }
  if (reader.at !== end) reader.ok = false;
  return { seconds: BigInt(seconds), nanos };
}

/** The GatewayRequest fields the row indexes; every string field is still UTF-8 checked. */
function gatewayRequest(end: number): {
  token: string;
  upstream: string;
  decision: number;
  status: number;
} {
  const request = { token: "", upstream: "", decision: 0, status: 0 };
  while (reader.ok && reader.at < end) {
    const key = tag();
    const field = key >>> 3;
    const wireType = key & 7;
    switch (field) {
      // Strings: token, upstream; request_id, method, path, reason, client_address and
      // dry_run_rule_ids only checked.
      case 2:
      case 3:
      case 1:
      case 4:
      case 5:
      case 7:
      case 12:
      case 14:
        if (!declared(wireType, LEN)) break;
        if (field === 2) request.token = string();
        else if (field === 3) request.upstream = string();
        else string(false);
        break;
      // int32: decision (an open enum), status, credential_version; int64: duration_us,
      // request_bytes, response_bytes, policy_version, only checked (a negative number is
      // ten bytes long and goes to protobuf-es).
      case 6:
      case 8:
      case 15:
      case 9:
      case 10:
      case 11:
      case 13:
        if (!declared(wireType, VARINT)) break;
        if (field === 6) request.decision = int32();
        else if (field === 8) request.status = int32();
        else if (field === 15) int32();
        else varint();
        break;
      default:
        skip(wireType); // unknown fields
    }
  }
  if (reader.at !== end) reader.ok = false;
  return request;
}
