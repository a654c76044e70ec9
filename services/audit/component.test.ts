import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Authenticator } from "../../libs/auth/principal.ts";
import { auditSubject, changeSubject, createMemoryBus } from "../../libs/bus/index.ts";
import type { Bus } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import { AuditService } from "../../libs/gen/latchkey/audit/v1/audit_pb.js";
import type { AuditEvent } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { createInProcessTransport } from "../../libs/rpc/index.ts";
import { skipUnless, testBus, testDatabase } from "../../test/fixtures/services.ts";
import { type AuditComponent, createAuditComponent, migrations } from "./component.ts";
import {
  auditBatchBytes,
  captureLog,
  changeBytes,
  changeEvent,
  eventually,
  gatewayEvent,
} from "./event-fixtures.ts";
import { countEvents } from "./store.ts";

const authenticate: Authenticator = async (header) =>
  header === "Bearer admin"
    ? { kind: "admin", keyId: "key_admin", role: "admin", tenants: ["*"] }
    : undefined;

interface BusUnderTest {
  name: string;
  skip: string | undefined;
  open(): Promise<{ bus: Bus; close(): Promise<void> }>;
}

// The same behaviour end to end on the embedded bus and on NATS JetStream.
const buses: BusUnderTest[] = [
  {
    name: "memory bus",
    skip: await skipUnless("postgres"),
    async open() {
      const bus = createMemoryBus({ redeliveryDelayMs: 50 });
      return { bus, close: () => bus.close() };
    },
  },
  { name: "NATS JetStream", skip: await skipUnless("postgres", "nats"), open: testBus },
];

const newTenant = () => `c-${randomBytes(4).toString("hex")}`;

for (const busUnderTest of buses) {
  describe(`audit component on the ${busUnderTest.name}`, { skip: busUnderTest.skip }, () => {
    let db: Db;
    let bus: Bus;
    let component: AuditComponent;
    const closers: (() => Promise<void>)[] = [];
    const { log } = captureLog();

    before(async () => {
      const database = await testDatabase({ migrate: [migrations] });
      db = database.db;
      const opened = await busUnderTest.open();
      bus = opened.bus;
      closers.push(opened.close, database.close);
      component = createAuditComponent({ db, bus, log, consumers: 8, lingerMs: 2 });
      await component.start();
    });
    after(async () => {
      await component?.stop();
      for (const close of closers) await close();
    });

    const client = () =>
      createClient(
        AuditService,
        createInProcessTransport({
          routes: (router) => component.routes(router),
          authenticate,
          log,
          credential: "admin",
        }),
      );
    const publish = (event: AuditEvent, msgId = event.id) =>
      bus.publish(auditSubject(event.tenant, "gateway_request"), auditBatchBytes(event), { msgId });
    const listed = async (tenant: string) =>
      (await client().listEvents({ parent: `tenants/${tenant}` })).events;

    test("stores published gateway events and changes once, listed newest first", async () => {
      const tenant = newTenant();
      const request = gatewayEvent({ tenant, timeMs: Date.now() - 1000 });
      const change = changeEvent({ tenant });
      await publish(request);
      await publish(request);
      await bus.publish(changeSubject(tenant, "token"), changeBytes(change), { msgId: change.id });
      await eventually("both events are listed", async () => (await listed(tenant)).length === 2);
      const events = await listed(tenant);
      assert.deepEqual(events[1], request);
      assert.equal(events[0]?.id, change.id);
      assert.deepEqual(events[0]?.detail, { case: "change", value: change });
    });

    test("an insert that fails is not acknowledged: the event comes back and is stored once", async () => {
      const tenant = newTenant();
      const event = gatewayEvent({ tenant });
      const failedBefore = component.ingestStats().failedBatches;
      await db.query("ALTER TABLE audit.events RENAME TO events_paused");
      try {
        await publish(event);
        await eventually(
          "the insert has failed",
          () => component.ingestStats().failedBatches > failedBefore,
        );
      } finally {
        await db.query("ALTER TABLE audit.events_paused RENAME TO events");
      }
      await eventually(
        "the redelivered event is stored",
        async () => (await countEvents(db, tenant)) > 0,
      );
      assert.deepEqual(await listed(tenant), [event]);
    });

    test("a malformed payload is acknowledged and skipped; the events after it flow", async () => {
      const tenant = newTenant();
      const malformedBefore = component.ingestStats().malformed;
      await bus.publish(
        auditSubject(tenant, "gateway_request"),
        new Uint8Array([0xff, 0xff, 0x01]),
        {
          msgId: `garbage-${tenant}`,
        },
      );
      const event = gatewayEvent({ tenant });
      await publish(event);
      await eventually(
        "the next event is stored",
        async () => (await countEvents(db, tenant)) === 1,
      );
      assert.ok(component.ingestStats().malformed > malformedBefore);
    });

    test("StreamEvents delivers events published after it started and stops when cancelled", async () => {
      const tenant = newTenant();
      const controller = new AbortController();
      const stream = client().streamEvents(
        { parent: `tenants/${tenant}`, filter: { upstream: "openai" } },
        { signal: controller.signal },
      );
      const iterator = stream[Symbol.asyncIterator]();
      const first = iterator.next();
      // The live subscription starts with the call; publish until it has seen one, so the
      // test does not depend on when the server registered it.
      const published = new Set<string>();
      let received: IteratorResult<{ event?: AuditEvent }> | undefined;
      first.then((r) => {
        received = r;
      });
      while (!received) {
        await publish(gatewayEvent({ tenant, upstream: "stripe" }));
        const wanted = gatewayEvent({ tenant, upstream: "openai" });
        published.add(wanted.id);
        await publish(wanted);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const event = received.value?.event;
      assert.ok(event && published.has(event.id));
      assert.equal(event.detail.case === "gatewayRequest" && event.detail.value.upstream, "openai");

      controller.abort();
      await assert.rejects(
        (async () => {
          for (;;) if ((await iterator.next()).done) return;
        })(),
        (err) => ConnectError.from(err).code === Code.Canceled,
      );
    });
  });
}
