import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { AuditEventSchema } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { readGatewayRequestColumns } from "./event-columns.ts";
import { auditBytes, changeEvent, gatewayEvent } from "./event-fixtures.ts";
import { auditPayloadToRow, type EventRow, eventToRow } from "./event-row.ts";

const receivedAt = new Date("2030-01-02T03:04:05.678Z");

/** The row `decode` gives, or the error it ends in as "Name: message". */
function outcome(decode: () => EventRow): EventRow | string {
  try {
    return decode();
  } catch (err) {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
}

/** The row protobuf-es' reflective decoding gives, or the error it ends in. */
function reflectiveRow(data: Uint8Array): EventRow | string {
  return outcome(() => eventToRow(fromBinary(AuditEventSchema, data), data));
}

/** The row the fast reader gives, its error, or undefined where it leaves the event. */
function fastRow(data: Uint8Array): EventRow | string | undefined {
  const columns = readGatewayRequestColumns(data);
  return columns === undefined ? undefined : outcome(() => eventToRow(columns, data));
}

/** Gateway events covering every GatewayRequest field, non-ASCII text and odd values. */
function sampleEvents(): Uint8Array[] {
  const full = gatewayEvent({ tenant: "acme", traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
  if (full.detail.case !== "gatewayRequest") throw new Error("fixture");
  Object.assign(full.detail.value, {
    path: "/v1/caf\u00e9/\u{1f600}",
    reason: "rule r1 matched",
    requestBytes: 1024n,
    responseBytes: 2n ** 40n,
    clientAddress: "192.0.2.1",
    policyVersion: 7n,
    dryRunRuleIds: ["r1", "r2"],
    credentialVersion: 3,
  });
  const empty = gatewayEvent({ tenant: "acme", token: "", upstream: "", status: 0 });
  if (empty.detail.case !== "gatewayRequest") throw new Error("fixture");
  empty.detail.value.decision = 0;
  const bad = [
    gatewayEvent({ tenant: "Not A Tenant" }),
    gatewayEvent({ id: "nope" }),
    gatewayEvent({ token: "x".repeat(600) }),
    gatewayEvent({ upstream: "a\u0000b" }),
    gatewayEvent({ timeMs: 253402300800_000 }),
  ];
  return [full, empty, gatewayEvent(), ...bad].map(auditBytes);
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("reading a gateway event's columns off the wire", () => {
  test("gives the row protobuf-es gives, errors included, for the events the gateway writes", () => {
    for (const [i, data] of sampleEvents().entries()) {
      const fast = fastRow(data);
      assert.notEqual(fast, undefined, `sample ${i} is read by the fast path`);
      assert.deepEqual(fast, reflectiveRow(data));
    }
  });

  test("leaves every other shape to protobuf-es", () => {
    const withoutTime = gatewayEvent();
    withoutTime.time = undefined;
    const negativeStatus = gatewayEvent({ status: -1 });
    const plain = auditBytes(gatewayEvent());
    const badUtf8 = auditBytes(gatewayEvent({ upstream: "caf\u00e9" }));
    // The first byte of "é" inside "café" (a 0xc3 may also occur in the time's varints).
    badUtf8[Buffer.from(badUtf8).indexOf("caf\u00e9") + 3] = 0xff;
    const cases: Record<string, Uint8Array> = {
      "without a time": auditBytes(withoutTime),
      "a negative int32": auditBytes(negativeStatus),
      "gateway_request twice (merged by protobuf)": Buffer.concat([plain, plain]),
      "invalid UTF-8": badUtf8,
      truncated: plain.subarray(0, plain.length - 3),
      "a group (wire type 3)": Buffer.concat([plain, Uint8Array.of(0x7b)]),
      "field number 0": Buffer.concat([Uint8Array.of(0x00, 0x00), plain]),
      "a change": auditBytes({
        ...gatewayEvent(),
        detail: { case: "change", value: changeEvent() },
      }),
      empty: new Uint8Array(0),
    };
    for (const [name, data] of Object.entries(cases)) {
      assert.equal(readGatewayRequestColumns(data), undefined, name);
      // ...and auditPayloadToRow still answers as protobuf-es does.
      const row = outcome(() => auditPayloadToRow(data, receivedAt));
      if (name !== "without a time") {
        const reflective = reflectiveRow(data);
        if (typeof reflective === "string") assert.equal(typeof row, "string", name);
        else assert.deepEqual(row, reflective, name);
      }
    }
  });

  test("agrees with protobuf-es on corrupted events wherever it reads them itself", () => {
    const next = random(20261128);
    const samples = sampleEvents();
    let read = 0;
    for (let i = 0; i < 20_000; i++) {
      const data = Buffer.from(samples[i % samples.length] as Uint8Array);
      const kind = next();
      let mutated: Uint8Array;
      if (kind < 0.6) {
        data[Math.floor(next() * data.length)] = Math.floor(next() * 256);
        mutated = data;
      } else if (kind < 0.8) {
        mutated = data.subarray(0, Math.floor(next() * data.length));
      } else {
        const at = Math.floor(next() * data.length);
        const extra = Buffer.from(
          Array.from({ length: 1 + Math.floor(next() * 4) }, () => Math.floor(next() * 256)),
        );
        mutated = Buffer.concat([data.subarray(0, at), extra, data.subarray(at)]);
      }
      const fast = fastRow(mutated);
      if (fast === undefined) continue;
      read++;
      assert.deepEqual(
        fast,
        reflectiveRow(mutated),
        `mutation ${i}: ${Buffer.from(mutated).toString("hex")}`,
      );
    }
    // Many corruptions still leave a readable event (about 5,170 of the 20,000 in every run
    // seen, ids and times varying): the comparison ran thousands of times.
    assert.ok(read > 4_000, `only ${read} corrupted events were read by the fast path`);
  });
});
