/**
 * Reading the audit stream's payload, `latchkey.events.v1.AuditEventBatch { repeated
 * AuditEvent events = 1; }`, without decoding the events: the audit service stores each
 * event's bytes as published. (The gateway frames batches with its own encoder,
 * services/gateway/audit-event.ts.)
 */

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
