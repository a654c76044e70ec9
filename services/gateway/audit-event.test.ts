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
  encodeAuditEventBatch,
  encodeGatewayRequestEvent,
  type GatewayRequestEvent,
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

test("the hand encoder decodes to the same AuditEvent as the generated code builds", () => {
  const decoded = fromBinary(AuditEventSchema, encodeGatewayRequestEvent(full));
  assert.ok(equals(AuditEventSchema, decoded, reference(full)));
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
  const decoded = fromBinary(AuditEventSchema, encodeGatewayRequestEvent(sparse));
  assert.ok(equals(AuditEventSchema, decoded, reference(sparse)));
});

test("a batch frames the events' bytes exactly as the generated code encodes AuditEventBatch", () => {
  // The second event is over 127 bytes, so its length prefix takes two varint bytes.
  const bytes = [
    encodeGatewayRequestEvent(full),
    encodeGatewayRequestEvent({ ...full, id: "evt_01jd4k5m6n7p8q9r0s1t2v3w4y", path: "/" }),
  ];
  assert.ok((bytes[0]?.byteLength ?? 0) > 127);
  const events = bytes.map((b) => fromBinary(AuditEventSchema, b));
  assert.deepEqual(
    new Uint8Array(encodeAuditEventBatch(bytes)), // a Buffer; compare the bytes
    toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events })),
  );
  assert.equal(encodeAuditEventBatch([]).byteLength, 0);
});
