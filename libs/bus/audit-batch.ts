/**
 * The audit stream's payload, `latchkey.events.v1.AuditEventBatch { repeated AuditEvent
 * events = 1; }`, framed and unframed without decoding the events: the gateway has each
 * event's bytes already (it encodes them itself) and the audit service stores each event's
 * bytes as published, so neither needs the events as objects to build or split a batch.
 */

/** Field 1, wire type 2 (length-delimited): `events`. */
const EVENTS_TAG = 0x0a;

/** Wraps encoded `AuditEvent`s as one encoded `AuditEventBatch`. */
export function encodeAuditEventBatch(events: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const event of events) size += 1 + varintSize(event.byteLength) + event.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const event of events) {
    out[at++] = EVENTS_TAG;
    let rest = event.byteLength;
    while (rest >= 0x80) {
      out[at++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    out[at++] = rest;
    out.set(event, at);
    at += event.byteLength;
  }
  return out;
}

/** Why a payload is not an `AuditEventBatch`; never contains payload contents. */
export class MalformedBatchError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "MalformedBatchError";
  }
}

/**
 * The encoded `AuditEvent`s of an encoded `AuditEventBatch`, in order, as views into `data`
 * (no copy). Fields other than `events` are skipped, as protobuf parsers do with fields they
 * do not know; a truncated or mis-framed payload throws MalformedBatchError.
 */
export function splitAuditEventBatch(data: Uint8Array): Uint8Array[] {
  const events: Uint8Array[] = [];
  let at = 0;
  const readVarint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= data.byteLength) throw new MalformedBatchError("truncated varint");
      const byte = data[at++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new MalformedBatchError("varint too large");
        return value;
      }
      scale *= 128;
    }
    throw new MalformedBatchError("varint longer than 10 bytes");
  };
  const skip = (length: number): void => {
    if (at + length > data.byteLength) throw new MalformedBatchError("truncated field");
    at += length;
  };
  while (at < data.byteLength) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new MalformedBatchError("field number 0");
    switch (wireType) {
      case 0:
        readVarint();
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        const length = readVarint();
        const start = at;
        skip(length);
        if (field === 1) events.push(data.subarray(start, at));
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        throw new MalformedBatchError(`unsupported wire type ${wireType}`);
    }
  }
  return events;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest >>>= 7) size++;
  return size;
}
