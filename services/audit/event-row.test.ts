import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, ResourceType } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { auditBytes, changeBytes, changeEvent, gatewayEvent } from "./event-fixtures.ts";
import {
  auditPayloadToRow,
  changePayloadToRow,
  MalformedEventError,
  microsToIso,
  timestampMicros,
  traceIdFromTraceparent,
} from "./event-row.ts";

const receivedAt = new Date("2030-01-02T03:04:05.678Z");

describe("event rows", () => {
  test("keep the published bytes and index the gateway request's fields", () => {
    const event = gatewayEvent({
      tenant: "acme",
      timeMs: Date.parse("2030-01-01T00:00:00.123Z"),
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      upstream: "openai",
      status: 429,
    });
    const bytes = auditBytes(event);
    const row = auditPayloadToRow(bytes, receivedAt);
    assert.equal(row.bytes, bytes);
    assert.equal(row.kind, "gateway_request");
    assert.equal(row.tenant, "acme");
    assert.equal(row.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(row.upstream, "openai");
    assert.equal(row.status, 429);
    assert.equal(microsToIso(row.timeUs), "2030-01-01T00:00:00.123000Z");
  });

  test("an event without a time is recorded at its arrival", () => {
    const event = gatewayEvent({ tenant: "acme" });
    event.time = undefined;
    const row = auditPayloadToRow(auditBytes(event), receivedAt);
    assert.equal(microsToIso(row.timeUs), "2030-01-02T03:04:05.678000Z");
    assert.equal(
      fromBinary(AuditEventSchema, row.bytes).time?.seconds,
      BigInt((receivedAt.getTime() / 1000) | 0),
    );
  });

  test("a change of a token is filed under that token; other changes under none", () => {
    const token = changeEvent({ tenant: "acme" });
    assert.equal(changePayloadToRow(changeBytes(token), {}, receivedAt).token, token.resource);
    const upstream = changeEvent({ tenant: "acme", resource: "tenants/acme/upstreams/stripe" });
    upstream.resourceType = ResourceType.UPSTREAM;
    const row = changePayloadToRow(changeBytes(upstream), {}, receivedAt);
    assert.equal(row.kind, "change");
    assert.equal(row.token, null);
    assert.equal(row.upstream, null);
    assert.equal(row.decision, null);
  });

  test("refuse what cannot be recorded", () => {
    const refused = [
      { ...gatewayEvent(), id: "" },
      { ...gatewayEvent(), id: "evt_with space" },
      { ...gatewayEvent(), tenant: "ACME" },
      gatewayEvent({ token: "tenants/acme/tokens/\u0000" }),
      gatewayEvent({ upstream: "x".repeat(600) }),
      { ...gatewayEvent(), time: create(TimestampSchema, { seconds: -1n }) },
      { ...gatewayEvent(), time: create(TimestampSchema, { seconds: 253402300800n }) },
    ];
    for (const [i, event] of refused.entries()) {
      assert.throws(
        () => auditPayloadToRow(auditBytes(event), receivedAt),
        MalformedEventError,
        `case ${i}`,
      );
    }
    assert.throws(
      () => auditPayloadToRow(new Uint8Array([0xff, 0xff]), receivedAt),
      MalformedEventError,
    );
    assert.throws(
      () => changePayloadToRow(new Uint8Array([0xff]), {}, receivedAt),
      MalformedEventError,
    );
  });

  test("an invalid trace id is not indexed (the event keeps it)", () => {
    const row = auditPayloadToRow(
      auditBytes(gatewayEvent({ traceId: "0".repeat(32) })),
      receivedAt,
    );
    assert.equal(row.traceId, null);
  });

  test("read the trace id from a W3C traceparent header", () => {
    assert.equal(
      traceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    assert.equal(traceIdFromTraceparent(undefined), undefined);
    assert.equal(traceIdFromTraceparent("garbage"), undefined);
    assert.equal(traceIdFromTraceparent(`00-${"0".repeat(32)}-00f067aa0ba902b7-01`), undefined);
  });

  test("keep microsecond precision, like timestamptz", () => {
    const us = timestampMicros({ seconds: 1_700_000_000n, nanos: 123_456_789 });
    assert.equal(us, 1_700_000_000_123_456n);
    assert.equal(microsToIso(us), "2023-11-14T22:13:20.123456Z");
  });
});
