import assert from "node:assert/strict";
import { test } from "node:test";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AuditEventBatchSchema,
  AuditEventSchema,
  GatewayDecision,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  entryLength,
  firstEventId,
  type GatewayRequestEvent,
  gatewayRequestEntryBound,
  writeGatewayRequestEntry,
} from "./audit-event.ts";

const full: GatewayRequestEvent = {
  id: "evt_01jd4k5m6n7p8q9r0s1t2v3w4x",
  tenant: "acme",
  timeMs: 1_767_225_600_123,
  traceId: "0af7651916cd43dd8448eb211c80319c",
  requestId: "req_01jd4k5m6n7p8q9r0s1t2v3w4x",
  token: "tenants/acme/tokens/tok_01jd4k5m6n7p8q9r0s1t2v3w4x",
  upstream: "stripe",
  method: "POST",
  path: "/v1/charges/caf\u00e9/\u{1f600}",
  decision: GatewayDecision.ALLOWED,
  reason: "stale_cache",
  status: 201,
  durationUs: 2 ** 40 + 17,
  requestBytes: 300,
  responseBytes: 5_000_000_000,
  clientAddress: "2001:db8::1",
  policyVersion: 1234,
  dryRunRuleIds: ["watch-1", "watch-2"],
  credentialVersion: 3,
};

/** The same event built the reflective way, as the generated code defines it. */
function reference(event: GatewayRequestEvent) {
  return create(AuditEventSchema, {
    id: event.id,
    tenant: event.tenant,
    time: timestampFromMs(event.timeMs),
    traceId: event.traceId,
    detail: {
      case: "gatewayRequest",
      value: {
        requestId: event.requestId,
        token: event.token,
        upstream: event.upstream,
        method: event.method,
        path: event.path,
        decision: event.decision,
        reason: event.reason,
        status: event.status,
        durationUs: BigInt(event.durationUs),
        requestBytes: BigInt(event.requestBytes),
        responseBytes: BigInt(event.responseBytes),
        clientAddress: event.clientAddress,
        policyVersion: BigInt(event.policyVersion),
        dryRunRuleIds: [...event.dryRunRuleIds],
        credentialVersion: event.credentialVersion,
      },
    },
  });
}

/** `events` encoded one after another, as the audit buffer appends them to a batch. */
function batch(...events: GatewayRequestEvent[]): Buffer {
  const room = events.reduce((sum, e) => sum + gatewayRequestEntryBound(e), 0);
  const bytes = Buffer.alloc(room);
  let at = 0;
  for (const event of events) {
    const end = writeGatewayRequestEntry(event, bytes, at);
    assert.ok(end - at <= gatewayRequestEntryBound(event), "within the bound");
    at = end;
  }
  return bytes.subarray(0, at);
}

/** The one event of a batch of one, decoded with the generated schema. */
function decodeOne(event: GatewayRequestEvent) {
  const { events } = fromBinary(AuditEventBatchSchema, batch(event));
  assert.equal(events.length, 1);
  return events[0] as (typeof events)[0];
}

test("the hand encoder decodes to the same AuditEvent as the generated code builds", () => {
  assert.ok(equals(AuditEventSchema, decodeOne(full), reference(full)));
});

test("zero values are left out, as proto3 does", () => {
  const sparse: GatewayRequestEvent = {
    ...full,
    token: "",
    upstream: "",
    path: "",
    reason: "",
    status: 0,
    durationUs: 0,
    requestBytes: 0,
    responseBytes: 0,
    policyVersion: 0,
    dryRunRuleIds: [],
    credentialVersion: 0,
    decision: GatewayDecision.REJECTED,
    timeMs: 1_767_225_600_000,
  };
  assert.ok(equals(AuditEventSchema, decodeOne(sparse), reference(sparse)));
});

test("entries frame the events exactly as the generated code encodes AuditEventBatch", () => {
  // Length prefixes of every size the one-pass writer guesses wrong and moves: a detail
  // under 128 bytes (one byte, not two), a string of 128 bytes or more (two, not one), and
  // an event over 16 KiB (three, not two).
  const events = [
    full,
    { ...full, id: "evt_01jd4k5m6n7p8q9r0s1t2v3w4y", path: "/" },
    { ...full, path: `/${"a".repeat(200)}`, reason: "\u00e9".repeat(70) },
    { ...full, path: `/${"b".repeat(20_000)}`, dryRunRuleIds: ["x".repeat(300)] },
    {
      ...full,
      token: "",
      upstream: "",
      method: "",
      path: "",
      reason: "",
      traceId: "",
      clientAddress: "",
      requestId: "r",
      dryRunRuleIds: [],
    },
  ];
  const expected = toBinary(
    AuditEventBatchSchema,
    create(AuditEventBatchSchema, { events: events.map(reference) }),
  );
  assert.deepEqual(new Uint8Array(batch(...events)), expected);
});

test("a batch's first event id and entry lengths are read back from its bytes", () => {
  const second = { ...full, id: "evt_01jd4k5m6n7p8q9r0s1t2v3w4y", path: `/${"c".repeat(300)}` };
  const one = batch(full);
  const bytes = batch(full, second);
  assert.equal(entryLength(bytes, 0), one.byteLength);
  assert.equal(entryLength(bytes, one.byteLength), bytes.byteLength - one.byteLength);
  assert.equal(firstEventId(bytes, 0), full.id);
  assert.equal(firstEventId(bytes, one.byteLength), second.id);
});
