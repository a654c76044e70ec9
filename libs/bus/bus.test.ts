import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { skipUnless, testBus } from "../../test/fixtures/services.ts";
import { createLogger } from "../log/index.ts";
import { auditSubject, changeSubject, createMemoryBus, openBus } from "./index.ts";
import { subjectMatches } from "./subjects.ts";
import type { Bus, BusMessage, ConsumeOptions, Subscription } from "./types.ts";

// Resolved before any suite is declared: a top-level await between suites would let
// the file's root hooks (the shared PGlite's close) run before the later suites.
const natsSkip = await skipUnless("nats");

const log = createLogger({ level: "silent" });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (message: BusMessage): string => decoder.decode(message.data);
/** A guard so a lost message fails the test instead of hanging the run. */
const timeout = 30_000;

/** A bus under test plus its cleanup. */
interface BusHandle {
  bus: Bus;
  close(): Promise<void>;
}

/**
 * Collects what a consumer receives and lets the test wait for a given message, so tests
 * wait for behaviour (a message arrived) instead of sleeping.
 */
function collector(handle?: (message: BusMessage) => Promise<void>) {
  const received: string[] = [];
  const waiters: { want: string; resolve: () => void }[] = [];
  const handler = async (message: BusMessage): Promise<void> => {
    if (handle) await handle(message);
    received.push(text(message));
    for (const waiter of waiters.filter((w) => w.want === text(message))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const until = (want: string): Promise<void> =>
    received.includes(want)
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiters.push({ want, resolve });
        });
  return { received, handler, until };
}

async function publishText(bus: Bus, subject: string, body: string, msgId = body): Promise<void> {
  await bus.publish(subject, encoder.encode(body), { msgId });
}

/** The behaviour both bus kinds must share: run unchanged against memory and NATS. */
function busContract(open: () => Promise<BusHandle>): void {
  test("a consumer receives subject, payload and headers as published", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const seen: BusMessage[] = [];
    const { handler, until } = collector(async (message) => {
      seen.push(message);
    });
    const consumer = bus.consume({ stream: "audit", durable: "roundtrip", handler });
    t.after(() => consumer.stop());
    await bus.publish(auditSubject("acme", "gateway"), encoder.encode("hello"), {
      msgId: "evt_roundtrip",
      headers: {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "X-Tenant": "acme",
      },
    });
    await until("hello");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.subject, "latchkey.audit.acme.gateway");
    assert.ok(seen[0]?.data instanceof Uint8Array);
    assert.deepEqual(seen[0]?.headers, {
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "x-tenant": "acme",
    });
  });

  test("a publisher may reuse its buffer once publish resolved", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = auditSubject("acme", "gateway");
    // A Buffer, as the gateway's audit batches are: its slice() is a view, not a copy.
    const buffer = Buffer.from("first-payload");
    await bus.publish(subject, buffer.subarray(0, 5), { msgId: "evt_reuse_1" });
    buffer.write("SECOND");
    await bus.publish(subject, buffer.subarray(0, 6), { msgId: "evt_reuse_2" });
    buffer.fill(0);
    const { received, handler, until } = collector();
    const consumer = bus.consume({ stream: "audit", durable: "reuse", handler });
    t.after(() => consumer.stop());
    await until("SECOND");
    assert.deepEqual(received, ["first", "SECOND"]);
  });

  test("a second publish with the same message id is dropped", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = changeSubject("acme", "token");
    await bus.publish(subject, encoder.encode("first"), { msgId: "evt_same" });
    await bus.publish(subject, encoder.encode("second"), { msgId: "evt_same" });
    await publishText(bus, subject, "last");
    const { received, handler, until } = collector();
    const consumer = bus.consume({ stream: "change", durable: "dedupe", handler });
    t.after(() => consumer.stop());
    // The stream is ordered: a stored duplicate would arrive before "last".
    await until("last");
    assert.deepEqual(received, ["first", "last"]);
  });

  test("a durable consumer resumes after a restart without redelivering acked messages", {
    timeout,
  }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = changeSubject("acme", "policy");
    for (const body of ["m1", "m2", "m3"]) await publishText(bus, subject, body);
    const first = collector();
    const options: Omit<ConsumeOptions, "handler"> = { stream: "change", durable: "resume" };
    const running = bus.consume({ ...options, handler: first.handler });
    await first.until("m3");
    await running.stop();
    for (const body of ["m4", "m5"]) await publishText(bus, subject, body);
    const second = collector();
    const restarted = bus.consume({ ...options, handler: second.handler });
    t.after(() => restarted.stop());
    await second.until("m5");
    assert.deepEqual(first.received, ["m1", "m2", "m3"]);
    assert.deepEqual(second.received, ["m4", "m5"]);
  });

  test("a message whose handler throws is delivered again", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = auditSubject("acme", "gateway");
    const attempts = new Map<string, number>();
    const { received, handler, until } = collector(async (message) => {
      const count = (attempts.get(text(message)) ?? 0) + 1;
      attempts.set(text(message), count);
      if (text(message) === "flaky" && count < 3) throw new Error("not yet");
    });
    const consumer = bus.consume({ stream: "audit", durable: "retry", handler });
    t.after(() => consumer.stop());
    await publishText(bus, subject, "flaky");
    await publishText(bus, subject, "steady");
    await until("flaky");
    await until("steady");
    assert.equal(attempts.get("flaky"), 3);
    assert.equal(attempts.get("steady"), 1);
    assert.deepEqual([...received].sort(), ["flaky", "steady"]);
  });

  test("durables are independent and workers of one durable share its messages", {
    timeout,
  }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = changeSubject("acme", "credential");
    const bodies = Array.from({ length: 20 }, (_, i) => `w${i}`);
    for (const body of bodies) await publishText(bus, subject, body);
    const other = collector();
    const shared: string[] = [];
    const done = new Set<string>();
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    const sharedHandler = async (message: BusMessage): Promise<void> => {
      shared.push(text(message));
      done.add(text(message));
      if (done.size === bodies.length) allDone();
    };
    const subscriptions: Subscription[] = [
      bus.consume({ stream: "change", durable: "pool", handler: sharedHandler, batch: 4 }),
      bus.consume({ stream: "change", durable: "pool", handler: sharedHandler, batch: 4 }),
      bus.consume({ stream: "change", durable: "other", handler: other.handler }),
    ];
    t.after(() => Promise.all(subscriptions.map((s) => s.stop())));
    await finished;
    await other.until("w19");
    assert.deepEqual([...shared].sort(), [...bodies].sort());
    assert.deepEqual(other.received, bodies);
  });

  test("a consumer with concurrency N runs up to N handlers at once and acks each", {
    timeout,
  }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = auditSubject("acme", "gateway");
    const bodies = Array.from({ length: 12 }, (_, i) => `c${i}`);
    for (const body of bodies) await publishText(bus, subject, body);
    // Handlers park until 4 are running at once, proving they overlap; then all finish.
    let active = 0;
    let peak = 0;
    const parked: (() => void)[] = [];
    const { received, handler, until } = collector(async () => {
      active++;
      peak = Math.max(peak, active);
      if (peak < 4) await new Promise<void>((resolve) => parked.push(resolve));
      for (const release of parked.splice(0)) release();
      active--;
    });
    const consumer = bus.consume({
      stream: "audit",
      durable: "parallel",
      handler,
      concurrency: 4,
      batch: 8,
    });
    for (const body of bodies) await until(body);
    await consumer.stop();
    assert.equal(peak, 4, "never more than `concurrency` handlers at once, and that many");
    assert.deepEqual([...received].sort(), [...bodies].sort());
    // Everything was acked: a restarted consumer of the durable gets only what comes next.
    const again = collector();
    const restarted = bus.consume({ stream: "audit", durable: "parallel", handler: again.handler });
    t.after(() => restarted.stop());
    await publishText(bus, subject, "after");
    await again.until("after");
    assert.deepEqual(again.received, ["after"]);
  });

  test("with concurrency, a failing handler's message is redelivered and the others are not", {
    timeout,
  }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const subject = auditSubject("acme", "gateway");
    const attempts = new Map<string, number>();
    const { handler, until } = collector(async (message) => {
      const count = (attempts.get(text(message)) ?? 0) + 1;
      attempts.set(text(message), count);
      if (text(message) === "p-flaky" && count < 2) throw new Error("not yet");
    });
    const consumer = bus.consume({ stream: "audit", durable: "p-retry", handler, concurrency: 3 });
    t.after(() => consumer.stop());
    for (const body of ["p-a", "p-flaky", "p-b"]) await publishText(bus, subject, body);
    for (const body of ["p-a", "p-flaky", "p-b"]) await until(body);
    assert.equal(attempts.get("p-flaky"), 2);
    assert.equal(attempts.get("p-a"), 1);
    assert.equal(attempts.get("p-b"), 1);
  });

  test("stop() waits for the handlers already running with concurrency", {
    timeout,
  }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    let finished = 0;
    let bothStarted!: () => void;
    const running = new Promise<void>((resolve) => {
      bothStarted = resolve;
    });
    const consumer = bus.consume({
      stream: "audit",
      durable: "s-drain",
      concurrency: 2,
      handler: async () => {
        if (++started === 2) bothStarted();
        await gate;
        finished++;
      },
    });
    await publishText(bus, auditSubject("acme", "gateway"), "s1");
    await publishText(bus, auditSubject("acme", "gateway"), "s2");
    await running;
    let stopResolved = false;
    const stopping = consumer.stop().then(() => {
      stopResolved = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stopResolved, false, "stop waits while handlers run");
    release();
    await stopping;
    assert.equal(finished, 2);
  });

  test("subscribe delivers live messages matching NATS wildcards", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const tokens = collector();
    const acme = collector();
    const subscriptions = [
      bus.subscribe("latchkey.change.*.token", (m) => void tokens.handler(m)),
      bus.subscribe("latchkey.change.acme.>", (m) => void acme.handler(m)),
    ];
    const subjectsSeen: string[] = [];
    subscriptions.push(bus.subscribe("latchkey.change.>", (m) => subjectsSeen.push(m.subject)));
    t.after(() => Promise.all(subscriptions.map((s) => s.stop())));
    await publishText(bus, changeSubject("acme", "token"), "acme-token");
    await publishText(bus, changeSubject("globex", "token"), "globex-token");
    await publishText(bus, changeSubject("acme", "upstream"), "acme-upstream");
    await publishText(bus, changeSubject("globex", "policy"), "globex-policy");
    await publishText(bus, changeSubject("end", "token"), "end-token");
    await publishText(bus, changeSubject("acme", "end"), "acme-end");
    await tokens.until("end-token");
    await acme.until("acme-end");
    assert.deepEqual(tokens.received, ["acme-token", "globex-token", "end-token"]);
    assert.deepEqual(acme.received, ["acme-token", "acme-upstream", "acme-end"]);
    // Subscribers see canonical subjects, whatever namespace the bus uses on the wire.
    assert.ok(subjectsSeen.includes("latchkey.change.globex.policy"));
  });

  test("a subscription stopped receives nothing more", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    const stopped = collector();
    const live = collector();
    const first = bus.subscribe("latchkey.change.>", (m) => void stopped.handler(m));
    const second = bus.subscribe("latchkey.change.>", (m) => void live.handler(m));
    t.after(() => second.stop());
    await publishText(bus, changeSubject("acme", "token"), "before");
    await stopped.until("before");
    await first.stop();
    await publishText(bus, changeSubject("acme", "token"), "after");
    await live.until("after");
    assert.deepEqual(stopped.received, ["before"]);
  });

  test("publishing outside every stream fails", { timeout }, async (t) => {
    const { bus, close } = await open();
    t.after(close);
    await assert.rejects(publishText(bus, "latchkey.nowhere.acme", "lost"));
  });
}

describe("memory bus", () => {
  busContract(async () => {
    const bus = createMemoryBus({ log, redeliveryDelayMs: 20 });
    return { bus, close: () => bus.close() };
  });

  test("openBus without a url gives the memory bus", async () => {
    const bus = await openBus({ log });
    assert.equal(bus.kind, "memory");
    await bus.close();
  });

  test("a duplicate id is accepted again once the window has passed", async () => {
    let clock = 0;
    const bus = createMemoryBus({ log, now: () => clock });
    const { received, handler, until } = collector();
    const consumer = bus.consume({ stream: "audit", durable: "window", handler });
    await bus.publish(auditSubject("a", "b"), encoder.encode("one"), { msgId: "evt_1" });
    clock = 121_000;
    await bus.publish(auditSubject("a", "b"), encoder.encode("two"), { msgId: "evt_1" });
    await until("two");
    assert.deepEqual(received, ["one", "two"]);
    await consumer.stop();
    await bus.close();
  });

  test("the stream keeps a bounded number of messages", async () => {
    const bus = createMemoryBus({ log, maxMessagesPerStream: 3 });
    for (const body of ["a", "b", "c", "d", "e"]) {
      await publishText(bus, auditSubject("t", "k"), body);
    }
    const { received, handler, until } = collector();
    const consumer = bus.consume({ stream: "audit", durable: "late", handler });
    await until("e");
    assert.deepEqual(received, ["c", "d", "e"]);
    await consumer.stop();
    await bus.close();
  });
});

describe("NATS bus", { skip: natsSkip }, () => {
  busContract(async () => {
    const handle = await testBus({ log, redeliveryDelayMs: 20 });
    assert.equal(handle.bus.kind, "nats");
    return handle;
  });

  test("namespaces isolate installations sharing one server", { timeout }, async (t) => {
    const a = await testBus({ log });
    t.after(a.close);
    const b = await testBus({ log });
    t.after(b.close);
    const seenByB = collector();
    const consumer = b.bus.consume({ stream: "audit", durable: "iso", handler: seenByB.handler });
    t.after(() => consumer.stop());
    await publishText(a.bus, auditSubject("acme", "x"), "for-a");
    await publishText(b.bus, auditSubject("acme", "x"), "for-b");
    await seenByB.until("for-b");
    assert.deepEqual(seenByB.received, ["for-b"]);
  });
});

describe("NATS bus recovery", { skip: natsSkip }, () => {
  test("a consumer whose durable or stream was deleted recreates it and goes on", {
    timeout,
  }, async (t) => {
    const handle = await testBus({ log, redeliveryDelayMs: 20 });
    t.after(handle.close);
    const { bus, url, namespace } = handle;
    const { handler, until } = collector();
    const consumer = bus.consume({ stream: "change", durable: "phoenix", handler });
    t.after(() => consumer.stop());
    const subject = changeSubject("acme", "token");
    await publishText(bus, subject, "before");
    await until("before");

    const { connect } = await import("@nats-io/transport-node");
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: url });
    t.after(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const streamName = `LATCHKEY_CHANGE_${namespace.toUpperCase()}`;

    await jsm.consumers.delete(streamName, "phoenix");
    await publishText(bus, subject, "after-consumer-loss");
    await until("after-consumer-loss");

    await jsm.streams.delete(streamName);
    // Until the consumer loop has recreated the stream, nothing captures the subject.
    await publishUntilStored(bus, subject, "after-stream-loss");
    await until("after-stream-loss");
  });
});

/** Publishes until a stream accepts the message (while a deleted stream is being recreated). */
async function publishUntilStored(bus: Bus, subject: string, body: string): Promise<void> {
  for (;;) {
    try {
      await publishText(bus, subject, body);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe("subjectMatches", () => {
  test("follows NATS wildcard rules", () => {
    assert.ok(subjectMatches("a.*.c", "a.b.c"));
    assert.ok(!subjectMatches("a.*.c", "a.b.b.c"));
    assert.ok(subjectMatches("a.>", "a.b.c"));
    assert.ok(!subjectMatches("a.>", "a"));
    assert.ok(subjectMatches("a.b", "a.b"));
    assert.ok(!subjectMatches("a.b", "a.b.c"));
    assert.ok(!subjectMatches("a.b.c", "a.b"));
    assert.ok(subjectMatches("*.>", "x.y"));
  });
});
