import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { embeddedDb, skipUnless, testBus, testDatabase } from "../../test/fixtures/services.ts";
import { createMemoryBus } from "../bus/index.ts";
import type { Bus, BusMessage, PublishOptions } from "../bus/types.ts";
import { migrate } from "../db/index.ts";
import type { Db } from "../db/types.ts";
import {
  ChangeAction,
  ChangeEventSchema,
  ResourceType,
} from "../gen/latchkey/events/v1/events_pb.js";
import { isId } from "../ids/index.ts";
import { createLogger } from "../log/index.ts";
import { createOutboxRelay, enqueue, enqueueChange, type OutboxLogger } from "./index.ts";

// Resolved before any suite is declared: a top-level await between suites would let
// the file's root hooks (the shared PGlite's close) run before the later suites.
const servicesSkip = await skipUnless("postgres", "nats");

const silent = createLogger({ level: "silent" });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const timeout = 30_000;
const dir = new URL("./testdata/migrations/", import.meta.url);

/** A database with a migrated schema of its own, and a bus, for one test. */
interface Setup {
  db: Db;
  bus: Bus;
  schema: string;
  close(): Promise<void>;
}

let schemaCounter = 0;

/** Receives every message of the change stream and waits for a given event id. */
function changeListener(bus: Bus, durable: string) {
  const ids: string[] = [];
  const messages: BusMessage[] = [];
  const waiters = new Map<string, () => void>();
  const subscription = bus.consume({
    stream: "change",
    durable,
    async handler(message) {
      const key = safeChangeId(message.data) ?? decoder.decode(message.data).split("|")[0] ?? "";
      ids.push(key);
      messages.push(message);
      waiters.get(key)?.();
    },
  });
  const until = (id: string): Promise<void> =>
    ids.includes(id)
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiters.set(id, resolve);
        });
  return { ids, messages, until, stop: () => subscription.stop() };
}

/** Plain test payloads are `id|text`; change events are protobuf: take their id. */
function safeChangeId(data: Uint8Array): string | undefined {
  const text = decoder.decode(data);
  if (text.includes("|")) return undefined;
  try {
    return fromBinary(ChangeEventSchema, data).id;
  } catch {
    return undefined;
  }
}

async function addThing(db: Db, schema: string, id: string, commit: boolean): Promise<void> {
  const work = db.transaction(async (tx) => {
    await tx.query(`insert into ${schema}.things (id, name) values ($1, $2)`, [id, id]);
    await enqueue(tx, schema, {
      id,
      subject: `latchkey.change.acme.token`,
      payload: encoder.encode(`${id}|payload`),
      headers: { "x-test": id },
    });
    if (!commit) throw new Error("rolled back on purpose");
  });
  if (commit) await work;
  else await assert.rejects(work, /on purpose/);
}

/** The behaviour every database × bus pairing must show. */
function outboxContract(setup: () => Promise<Setup>): void {
  test("only committed rows are published, each once", { timeout }, async (t) => {
    const { db, bus, schema, close } = await setup();
    t.after(close);
    const listener = changeListener(bus, "once");
    t.after(listener.stop);
    const relay = createOutboxRelay({ db, schema, bus, log: silent });

    await addThing(db, schema, "evt_committed", true);
    await addThing(db, schema, "evt_rolled_back", false);
    assert.equal(await relay.flush(), 1);
    assert.equal(await relay.flush(), 0);

    // A crash between publish and mark sends the row again: the bus drops the copy.
    await db.query(`update ${schema}.outbox set sent_at = null where id = 'evt_committed'`);
    assert.equal(await relay.flush(), 1);

    await addThing(db, schema, "evt_sentinel", true);
    assert.equal(await relay.flush(), 1);
    await listener.until("evt_sentinel");
    assert.deepEqual(listener.ids, ["evt_committed", "evt_sentinel"]);
    assert.deepEqual(listener.messages[0]?.headers, { "x-test": "evt_committed" });
    const pending = await db.query(`select 1 from ${schema}.outbox where sent_at is null`);
    assert.equal(pending.rowCount, 0);
  });

  test("a started relay publishes after kick without flush", { timeout }, async (t) => {
    const { db, bus, schema, close } = await setup();
    t.after(close);
    const listener = changeListener(bus, "kicked");
    t.after(listener.stop);
    // A poll interval far beyond the test's timeout: only kick() can explain delivery.
    const relay = createOutboxRelay({ db, schema, bus, log: silent, pollIntervalMs: 600_000 });
    relay.start();
    t.after(() => relay.stop());
    await addThing(db, schema, "evt_k1", true);
    relay.kick();
    await listener.until("evt_k1");
    await addThing(db, schema, "evt_k2", true);
    await addThing(db, schema, "evt_k3", true);
    relay.kick();
    relay.kick();
    await listener.until("evt_k3");
    assert.deepEqual(listener.ids, ["evt_k1", "evt_k2", "evt_k3"]);
  });

  test("a running relay deletes sent rows past retention", {
    timeout,
  }, async (t) => {
    const { db, bus, schema, close } = await setup();
    t.after(close);
    const listener = changeListener(bus, "pruned");
    t.after(listener.stop);
    const relay = createOutboxRelay({
      db,
      schema,
      bus,
      log: silent,
      pollIntervalMs: 10,
      retentionMs: 0,
    });
    await addThing(db, schema, "evt_p1", true);
    relay.start();
    t.after(() => relay.stop());
    await listener.until("evt_p1");
    for (let i = 0; i < 200; i++) {
      const { rowCount } = await db.query(`select 1 from ${schema}.outbox`);
      if (rowCount === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal((await db.query(`select 1 from ${schema}.outbox`)).rowCount, 0);
  });

  test("the relay outlives a bus failure and publishes once the bus is back", {
    timeout,
  }, async (t) => {
    const { db, bus, schema, close } = await setup();
    t.after(close);
    const listener = changeListener(bus, "survivor");
    t.after(listener.stop);
    const flaky = failingBus(bus);
    const warnings: object[] = [];
    const log: OutboxLogger = { ...silent, warn: (fields) => void warnings.push(fields) };
    const relay = createOutboxRelay({
      db,
      schema,
      bus: flaky.bus,
      log,
      pollIntervalMs: 5,
      maxBackoffMs: 20,
    });
    flaky.fail = true;
    await addThing(db, schema, "evt_delayed", true);
    await assert.rejects(relay.flush(), /bus unavailable/);
    relay.start();
    t.after(() => relay.stop());
    await flaky.attempted(3);
    const stillPending = await db.query(`select 1 from ${schema}.outbox where sent_at is null`);
    assert.equal(stillPending.rowCount, 1);
    flaky.fail = false;
    await listener.until("evt_delayed");
    assert.deepEqual(listener.ids, ["evt_delayed"]);
    // Failures are logged with the event id, never with the payload.
    assert.ok(warnings.length > 0);
    const logged = JSON.stringify(warnings);
    assert.ok(logged.includes("evt_delayed"));
    assert.ok(!logged.includes("payload"));
  });

  test("enqueueChange publishes a ChangeEvent on the resource's change subject", {
    timeout,
  }, async (t) => {
    const { db, bus, schema, close } = await setup();
    t.after(close);
    const listener = changeListener(bus, "changes");
    t.after(listener.stop);
    const time = new Date("2030-01-02T03:04:05.000Z");
    const event = await db.transaction((tx) =>
      enqueueChange(tx, schema, {
        tenant: "acme",
        resource: "tenants/acme/policySets/current",
        resourceType: ResourceType.POLICY_SET,
        action: ChangeAction.UPDATED,
        actor: "key_admin",
        version: 7,
        time,
      }),
    );
    assert.ok(isId("event", event.id));
    await createOutboxRelay({ db, schema, bus, log: silent }).flush();
    await listener.until(event.id);
    const message = listener.messages[0];
    assert.equal(message?.subject, "latchkey.change.acme.policy");
    const decoded = fromBinary(ChangeEventSchema, message?.data ?? new Uint8Array());
    assert.equal(decoded.id, event.id);
    assert.equal(decoded.tenant, "acme");
    assert.equal(decoded.resource, "tenants/acme/policySets/current");
    assert.equal(decoded.resourceType, ResourceType.POLICY_SET);
    assert.equal(decoded.action, ChangeAction.UPDATED);
    assert.equal(decoded.actor, "key_admin");
    assert.equal(decoded.version, 7n);
    assert.deepEqual(decoded.time && timestampDate(decoded.time), time);
  });
}

/**
 * Wraps a real bus so publishing can be made to fail, as it does while NATS is down; the
 * relay's reaction is what is under test, the bus itself stays real.
 */
function failingBus(inner: Bus) {
  let attempts = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const state = {
    fail: false,
    bus: {
      ...inner,
      kind: inner.kind,
      consume: inner.consume.bind(inner),
      subscribe: inner.subscribe.bind(inner),
      close: inner.close.bind(inner),
      async publish(subject: string, data: Uint8Array, options: PublishOptions) {
        attempts++;
        for (const waiter of waiters.filter((w) => attempts >= w.count)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
        if (state.fail) throw new Error("bus unavailable");
        await inner.publish(subject, data, options);
      },
    } satisfies Bus,
    /** Resolves once publish has been tried `count` times in total. */
    attempted(count: number): Promise<void> {
      if (attempts >= count) return Promise.resolve();
      return new Promise((resolve) => {
        waiters.push({ count, resolve });
      });
    },
  };
  return state;
}

/** Migrates a schema of the test's own, from the test migration rewritten for it. */
async function migratedSchema(db: Db): Promise<string> {
  const schema = `obx_${process.pid}_${++schemaCounter}`;
  const folder = await mkdtemp(join(tmpdir(), "lk-outbox-"));
  try {
    const sql = await readFile(new URL("0001_init.sql", dir), "utf8");
    await writeFile(join(folder, "0001_init.sql"), sql.replaceAll("obx.", `${schema}.`));
    await migrate(db, { schema, dir: pathToFileURL(`${folder}/`), outbox: true });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return schema;
}

describe("PGlite with the memory bus", () => {
  outboxContract(async () => {
    const db = await embeddedDb();
    const schema = await migratedSchema(db);
    const bus = createMemoryBus({ log: silent, redeliveryDelayMs: 10 });
    return { db, bus, schema, close: () => bus.close() };
  });
});

describe("PostgreSQL with NATS", { skip: servicesSkip }, () => {
  outboxContract(async () => {
    const database = await testDatabase();
    const schema = await migratedSchema(database.db);
    const nats = await testBus({ log: silent, redeliveryDelayMs: 10 });
    return {
      db: database.db,
      bus: nats.bus,
      schema,
      async close() {
        await nats.close();
        await database.close();
      },
    };
  });

  test("relays of several replicas publish each row exactly once", { timeout }, async (t) => {
    const database = await testDatabase();
    t.after(database.close);
    const { db } = database;
    const schema = await migratedSchema(db);
    const inner = createMemoryBus({ log: silent });
    t.after(() => inner.close());
    const published = new Map<string, number>();
    const counting: Bus = {
      ...inner,
      kind: inner.kind,
      consume: inner.consume.bind(inner),
      subscribe: inner.subscribe.bind(inner),
      close: inner.close.bind(inner),
      async publish(subject, data, options) {
        published.set(options.msgId, (published.get(options.msgId) ?? 0) + 1);
        await inner.publish(subject, data, options);
      },
    };
    for (let i = 0; i < 60; i++) await addThing(db, schema, `evt_r${i}`, true);
    const relays = Array.from({ length: 3 }, () =>
      createOutboxRelay({ db, schema, bus: counting, log: silent, batchSize: 5 }),
    );
    const sent = await Promise.all(relays.map((relay) => relay.flush()));
    assert.equal(
      sent.reduce((a, b) => a + b, 0),
      60,
    );
    assert.equal(published.size, 60);
    assert.ok([...published.values()].every((count) => count === 1));
  });
});
