import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { splitAuditEventBatch } from "../../libs/bus/audit-batch.ts";
import { createMemoryBus } from "../../libs/bus/memory-bus.ts";
import type { Bus } from "../../libs/bus/types.ts";
import {
  AuditEventBatchSchema,
  GatewayDecision,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
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
    for (const event of fromBinary(AuditEventBatchSchema, message.data).events)
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

/** A publisher on `bus` that flushes only when asked (its timer is not started). */
function publisher(bus: Bus, capacity = 10) {
  return createAuditPublisher({ bus, log: capture().log, ids, capacity, flushMs: 1_000 });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

/** Holds every publish of `bus` until `release()` is called (which lets all waiting ones go). */
function gate(bus: Bus, onPublish: (data: Uint8Array) => void = () => {}) {
  const publish = bus.publish;
  let waiting: (() => void)[] = [];
  bus.publish = async (subject, data, options) => {
    onPublish(data);
    await new Promise<void>((resolve) => waiting.push(resolve));
    return publish(subject, data, options);
  };
  return {
    release: () => {
      for (const resolve of waiting) resolve();
      waiting = [];
    },
  };
}

test("publishes a round's events as one batch per tenant, in order, on the tenant's subject", async () => {
  const bus = createMemoryBus();
  const messages: { subject: string; msgId: string | undefined; requestIds: string[] }[] = [];
  const publish = bus.publish.bind(bus);
  bus.publish = (subject, data, options) => {
    const events = fromBinary(AuditEventBatchSchema, data).events;
    messages.push({
      subject,
      msgId: options?.msgId,
      requestIds: events.map((e) =>
        e.detail.case === "gatewayRequest" ? e.detail.value.requestId : "",
      ),
    });
    assert.equal(options?.msgId, events[0]?.id, "message id is the first event's id");
    return publish(subject, data, options);
  };
  const audit = publisher(bus, 100);
  audit.record(exchange(1));
  audit.record(exchange(2, ""));
  audit.record(exchange(3));
  await audit.flush();
  assert.deepEqual(
    messages.map(({ subject, requestIds }) => ({ subject, requestIds })),
    [
      { subject: "latchkey.audit.acme.request", requestIds: ["req_1", "req_3"] },
      { subject: "latchkey.audit._unknown.request", requestIds: ["req_2"] },
    ],
  );
  assert.equal(audit.pending, 0);
});

test("splits a round into messages of at most maxBatchBytes and rounds of roundSize", async () => {
  const { bus, published } = flakyBus();
  const messages: Uint8Array[][] = [];
  const publish = bus.publish;
  bus.publish = (subject, data, options) => {
    messages.push(splitAuditEventBatch(data));
    return publish(subject, data, options);
  };
  const options = { bus, log: capture().log, ids, capacity: 100, flushMs: 1_000 };
  // One event's size (these exchanges all encode to the same length).
  const probe = createAuditPublisher(options);
  probe.record(exchange(0));
  await probe.flush();
  const eventBytes = messages[0]?.[0]?.byteLength ?? 0;
  assert.ok(eventBytes > 0);
  messages.length = 0;

  // Room for two events per message, not three; four events per round.
  const audit = createAuditPublisher({
    ...options,
    roundSize: 4,
    maxBatchBytes: Math.floor(eventBytes * 2.5),
  });
  for (let i = 1; i <= 10; i++) audit.record(exchange(i));
  await audit.flush();
  await settle();
  assert.deepEqual(
    messages.map((events) => events.length),
    [2, 2, 2, 2, 2],
  );
  assert.deepEqual(
    published(),
    Array.from({ length: 11 }, (_, i) => `req_${i}`),
  );
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
  const audit = publisher(bus);
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

test("events recorded while a round is being published wait for the next flush", {
  timeout: 5_000,
}, async () => {
  const { bus, published } = flakyBus();
  const sizes: number[] = [];
  const { release } = gate(bus, (data) => sizes.push(splitAuditEventBatch(data).length));
  const audit = publisher(bus);
  audit.record(exchange(1));
  audit.record(exchange(2));
  const flushed = audit.flush();
  await settle();
  audit.record(exchange(3));
  release();
  await flushed;
  // One message for what was queued when the flush began; the late event is still queued,
  // not sent on its own in the same flush.
  assert.deepEqual(sizes, [2]);
  assert.equal(audit.pending, 1);
  const next = audit.flush();
  await settle();
  release();
  await next;
  await settle();
  assert.deepEqual(sizes, [2, 1]);
  assert.deepEqual(published(), ["req_1", "req_2", "req_3"]);
});

test("stop also publishes events recorded while its flush was under way", {
  timeout: 5_000,
}, async () => {
  const { bus, published } = flakyBus();
  const { release } = gate(bus);
  const audit = publisher(bus);
  audit.record(exchange(1));
  const stopped = audit.stop(1_000);
  await settle();
  audit.record(exchange(2)); // e.g. a request cut at the drain timeout
  release();
  await settle();
  release();
  await stopped;
  await settle();
  assert.deepEqual(published(), ["req_1", "req_2"]);
  assert.equal(audit.pending, 0);
});

test("a tenant's batch grows to hold a busy round; an event over maxBatchBytes goes alone", async () => {
  const { bus, published } = flakyBus();
  const sizes: number[] = [];
  const publish = bus.publish;
  bus.publish = (subject, data, options) => {
    sizes.push(splitAuditEventBatch(data).length);
    return publish(subject, data, options);
  };
  const audit = publisher(bus, 1_000);
  for (let i = 0; i < 300; i++) audit.record(exchange(i)); // ~30 KB: the first buffer grows
  await audit.flush();
  await settle();
  assert.deepEqual(sizes, [300]);
  assert.deepEqual(
    published(),
    Array.from({ length: 300 }, (_, i) => `req_${i}`),
  );

  const tiny = createAuditPublisher({
    bus,
    log: capture().log,
    ids,
    capacity: 10,
    flushMs: 1_000,
    maxBatchBytes: 10,
  });
  for (let i = 0; i < 3; i++) tiny.record(exchange(i));
  await tiny.flush();
  assert.deepEqual(sizes, [300, 1, 1, 1]);
});

test("a full buffer drops the oldest event across tenants", async () => {
  const { bus, published } = flakyBus();
  const audit = publisher(bus, 3);
  audit.record(exchange(1, "a"));
  audit.record(exchange(2, "b"));
  audit.record(exchange(3, "a"));
  audit.record(exchange(4, "b")); // drops req_1, the first of the oldest batch
  audit.record(exchange(5, "b")); // drops req_3: "a"'s batch is now the oldest
  assert.equal(audit.dropped, 2);
  assert.equal(audit.pending, 3);
  await audit.flush();
  await settle();
  assert.deepEqual(published(), ["req_2", "req_4", "req_5"]);
});

test("a failed batch is published again with the same bytes and message id", async () => {
  const { bus, down, published } = flakyBus();
  const attempts: { msgId: string | undefined; data: Uint8Array }[] = [];
  const publish = bus.publish;
  bus.publish = (subject, data, options) => {
    attempts.push({ msgId: options?.msgId, data: new Uint8Array(data) });
    return publish(subject, data, options);
  };
  const audit = publisher(bus);
  down(true);
  audit.record(exchange(1));
  audit.record(exchange(2));
  await audit.flush();
  audit.record(exchange(3));
  down(false);
  await audit.flush();
  await settle();
  assert.equal(attempts.length, 3); // the failed one, its retry, then the late event's batch
  assert.equal(attempts[1]?.msgId, attempts[0]?.msgId);
  assert.deepEqual(attempts[1]?.data, attempts[0]?.data);
  assert.notEqual(attempts[2]?.msgId, attempts[0]?.msgId);
  assert.deepEqual(published(), ["req_1", "req_2", "req_3"]);
});

test("a failed batch coming back to a buffer filled meanwhile loses its oldest events", {
  timeout: 5_000,
}, async () => {
  const { bus, down, published } = flakyBus();
  const { release } = gate(bus);
  const audit = publisher(bus, 3);
  audit.record(exchange(1));
  audit.record(exchange(2));
  audit.record(exchange(3));
  down(true);
  const flushed = audit.flush();
  await settle();
  audit.record(exchange(4)); // recorded while the round is out
  audit.record(exchange(5));
  release(); // the round fails: room for one of its three events
  await flushed;
  assert.equal(audit.dropped, 2);
  assert.equal(audit.pending, 3);
  down(false);
  const next = audit.flush();
  await settle();
  release(); // both batches of the round
  await next;
  await settle();
  assert.deepEqual(published(), ["req_3", "req_4", "req_5"]);
});
