import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AuditEventBatchSchema, AuditEventSchema } from "../gen/latchkey/events/v1/events_pb.js";
import { MalformedBatchError, splitAuditEventBatch } from "./audit-batch.ts";

const event = (id: string, path = "/v1/x") =>
  create(AuditEventSchema, {
    id,
    tenant: "acme",
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    detail: { case: "gatewayRequest", value: { requestId: `req_${id}`, method: "GET", path } },
  });

const batchOf = (...events: ReturnType<typeof event>[]) =>
  toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events }));

test("splits a batch protobuf-es encodes into the same event bytes", () => {
  // One event over 127 bytes, so its length prefix takes two varint bytes.
  const events = [event("evt_1"), event("evt_2", `/v1/${"a".repeat(300)}`), event("evt_3")];
  const split = splitAuditEventBatch(batchOf(...events));
  assert.deepEqual(
    split,
    events.map((e) => toBinary(AuditEventSchema, e)),
  );
  assert.deepEqual(
    split.map((bytes) => fromBinary(AuditEventSchema, bytes)),
    events,
  );
});

test("skips fields it does not know, as a protobuf parser does", () => {
  const one = toBinary(AuditEventSchema, event("evt_1"));
  const batch = batchOf(event("evt_1"));
  // Field 2 varint 150, field 3 fixed64, field 4 bytes "hi", field 5 fixed32, then the batch.
  const unknown = [
    0x10,
    0x96,
    0x01,
    0x19,
    ...new Array(8).fill(0),
    0x22,
    2,
    0x68,
    0x69,
    0x2d,
    1,
    2,
    3,
    4,
  ];
  const split = splitAuditEventBatch(new Uint8Array([...unknown, ...batch]));
  assert.deepEqual(split, [one]);
});

test("refuses truncated or mis-framed payloads with MalformedBatchError", () => {
  const batch = batchOf(event("evt_1"));
  for (const bad of [
    batch.subarray(0, batch.byteLength - 1), // event cut short
    new Uint8Array([0x0a]), // length missing
    new Uint8Array([0x0a, 0xff]), // length varint cut short
    new Uint8Array([0x02]), // field 0
    new Uint8Array([0x0b]), // wire type 3 (groups) is not produced by proto3
    new Uint8Array(11).fill(0xff), // varint longer than 10 bytes
  ]) {
    assert.throws(() => splitAuditEventBatch(bad), MalformedBatchError);
  }
  assert.deepEqual(splitAuditEventBatch(new Uint8Array(0)), []);
});
