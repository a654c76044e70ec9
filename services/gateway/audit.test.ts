import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { createMemoryBus } from "../../libs/bus/memory-bus.ts";
import type { Bus } from "../../libs/bus/types.ts";
import { AuditEventSchema, GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { createAuditPublisher } from "./audit.ts";
import { Exchange } from "./exchange.ts";
import { createIdSource } from "./request-ids.ts";

const ids = createIdSource();

function exchange(n: number, tenant = "acme"): Exchange {
  const ex = new Exchange(`req_${n}`, Date.now(), "GET", "192.0.2.1", false, []);
  ex.tenant = tenant;
  ex.finish(GatewayDecision.ALLOWED, "", 200);
  return ex;
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _encoding, callback) {
        lines.push(JSON.parse(String(chunk)));
        callback();
      },
    }),
  });
  return { log, lines };
}

/** The real in-process bus with a switch that makes publishing fail (NATS down). */
function flakyBus(): { bus: Bus; down: (value: boolean) => void; published: () => string[] } {
  const inner = createMemoryBus();
  const requestIds: string[] = [];
  inner.subscribe("latchkey.audit.>", (message) => {
    const event = fromBinary(AuditEventSchema, message.data);
    if (event.detail.case === "gatewayRequest") requestIds.push(event.detail.value.requestId);
  });
  let isDown = false;
  const bus: Bus = {
    kind: "memory",
    publish: (subject, data, options) =>
      isDown ? Promise.reject(new Error("no responders")) : inner.publish(subject, data, options),
    consume: (options) => inner.consume(options),
    subscribe: (subject, handler) => inner.subscribe(subject, handler),
    close: () => inner.close(),
  };
  return { bus, down: (value) => (isDown = value), published: () => requestIds };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

test("publishes one event per recorded exchange on the tenant's audit subject", async () => {
  const bus = createMemoryBus();
  const subjects: string[] = [];
  bus.subscribe("latchkey.audit.>", (message) => subjects.push(message.subject));
  const audit = createAuditPublisher({
    bus,
    log: capture().log,
    ids,
    capacity: 100,
    flushMs: 1_000,
  });
  audit.record(exchange(1));
  audit.record(exchange(2, ""));
  await audit.flush();
  await settle();
  assert.deepEqual(subjects, ["latchkey.audit.acme.request", "latchkey.audit._unknown.request"]);
  assert.equal(audit.pending, 0);
});

test("when the buffer is full the oldest events are dropped, counted and logged once", async () => {
  const { bus, published } = flakyBus();
  const { log, lines } = capture();
  const audit = createAuditPublisher({ bus, log, ids, capacity: 3, flushMs: 1_000 });
  for (let i = 1; i <= 5; i++) audit.record(exchange(i));
  assert.equal(audit.dropped, 2);
  assert.equal(audit.pending, 3);
  await audit.flush();
  await settle();
  assert.deepEqual(published(), ["req_3", "req_4", "req_5"]);
  const warnings = lines.filter((line) => line.msg === "audit buffer full; oldest events dropped");
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.dropped, 2);
});

test("events wait while the bus is down and go out, in order, when it is back", async () => {
  const { bus, down, published } = flakyBus();
  const audit = createAuditPublisher({
    bus,
    log: capture().log,
    ids,
    capacity: 10,
    flushMs: 1_000,
  });
  down(true);
  audit.record(exchange(1));
  audit.record(exchange(2));
  await audit.flush();
  assert.equal(audit.pending, 2);
  audit.record(exchange(3));
  down(false);
  await audit.flush();
  await settle();
  assert.deepEqual(published(), ["req_1", "req_2", "req_3"]);
  assert.equal(audit.pending, 0);
});

test("the background loop flushes without being asked, and stop drains", async () => {
  const { bus, published } = flakyBus();
  const audit = createAuditPublisher({ bus, log: capture().log, ids, capacity: 10, flushMs: 5 });
  audit.start();
  audit.record(exchange(1));
  for (let i = 0; i < 100 && published().length === 0; i++) await settle();
  assert.deepEqual(published(), ["req_1"]);
  audit.record(exchange(2));
  await audit.stop(1_000);
  await settle();
  assert.deepEqual(published(), ["req_1", "req_2"]);
});
