import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createMemoryBus } from "../../libs/bus/index.ts";
import type { BusMessage } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import { type AuditEvent, GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { migrations } from "./component.ts";
import {
  auditBatchBytes,
  captureLog,
  changeBytes,
  changeEvent,
  gatewayEvent,
} from "./event-fixtures.ts";
import { rowEvent } from "./event-row.ts";
import { createIngest, type IngestOptions } from "./ingest.ts";
import { countEvents, listEvents } from "./store.ts";

const tenantName = () => `t-${randomBytes(4).toString("hex")}`;

function auditMessage(data: Uint8Array, tenant = "acme"): BusMessage {
  return { subject: `latchkey.audit.${tenant}.gateway_request`, data, headers: {} };
}

describe("audit ingest", { skip: await skipUnless("postgres") }, () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await testDatabase({ migrate: [migrations] }));
  });
  after(() => close?.());

  const ingestWith = (options: Partial<IngestOptions> = {}) => {
    const { log, text } = captureLog();
    const ingest = createIngest({ db, bus: createMemoryBus(), log, ...options });
    return { ingest, logText: text };
  };

  test("stores an event once however often its message is delivered", async () => {
    const { ingest } = ingestWith();
    const tenant = tenantName();
    const event = gatewayEvent({ tenant });
    const message = auditMessage(auditBatchBytes(event), tenant);
    // A redelivery after a crash arrives on its own; a duplicate may also share a batch.
    await ingest.handleAudit(message);
    await Promise.all([ingest.handleAudit(message), ingest.handleAudit(message)]);
    assert.equal(await countEvents(db, tenant), 1);
    const [stored] = await listEvents(db, tenant, {}, { limit: 10 });
    assert.deepEqual(rowEvent(stored?.event ?? new Uint8Array()), event);
    assert.equal(ingest.stats().inserted, 1);
    assert.equal(ingest.stats().duplicates, 2);
  });

  test("writes messages that arrive together in one INSERT per batch", async () => {
    const { ingest } = ingestWith({ batchSize: 100, lingerMs: 1000 });
    const tenant = tenantName();
    const events = Array.from({ length: 250 }, () => gatewayEvent({ tenant }));
    const handled = events.map((e) => ingest.handleAudit(auditMessage(auditBatchBytes(e), tenant)));
    // Two full batches go at once; the last 50 wait for the linger, or for stop().
    await Promise.all(handled.slice(0, 200));
    assert.equal(ingest.stats().batches, 2);
    await ingest.stop();
    await Promise.all(handled);
    assert.equal(ingest.stats().batches, 3);
    assert.equal(await countEvents(db, tenant), 250);
  });

  test("acknowledges only after the commit: a failed insert leaves the message for redelivery", async () => {
    const { ingest, logText } = ingestWith();
    const tenant = tenantName();
    const event = gatewayEvent({ tenant });
    const message = auditMessage(auditBatchBytes(event), tenant);
    await db.query("ALTER TABLE audit.events RENAME TO events_paused");
    try {
      await assert.rejects(ingest.handleAudit(message));
    } finally {
      await db.query("ALTER TABLE audit.events_paused RENAME TO events");
    }
    assert.equal(ingest.stats().failedBatches, 1);
    assert.match(logText(), /left for redelivery/);
    // The redelivery succeeds and the event is stored once.
    await ingest.handleAudit(message);
    assert.equal(await countEvents(db, tenant), 1);
  });

  test("acknowledges and skips malformed payloads without logging their contents", async () => {
    const { ingest, logText } = ingestWith();
    const tenant = tenantName();
    const secret = "lk_SECRETSECRETSECRETSECRET";
    const garbage = new TextEncoder().encode(`\u00ff\u00ff${secret}`);
    await ingest.handleAudit(auditMessage(garbage, tenant));
    // Well-formed protobuf, but no tenant to file it under.
    await ingest.handleAudit(auditMessage(auditBatchBytes(gatewayEvent({ tenant: "" })), tenant));
    // Neither a gateway request nor a change.
    const empty = gatewayEvent({ tenant });
    empty.detail = { case: undefined };
    await ingest.handleAudit(auditMessage(auditBatchBytes(empty), tenant));
    await ingest.handleChange({ subject: "latchkey.change.x.token", data: garbage, headers: {} });
    assert.equal(ingest.stats().malformed, 4);
    assert.equal(await countEvents(db, tenant), 0);
    assert.match(logText(), /malformed audit payload acknowledged and skipped/);
    assert.match(logText(), /malformed audit events acknowledged and skipped/);
    assert.ok(!logText().includes(secret));
    // The stream goes on: the next event is stored.
    await ingest.handleAudit(auditMessage(auditBatchBytes(gatewayEvent({ tenant })), tenant));
    assert.equal(await countEvents(db, tenant), 1);
  });

  test("a batch's well-formed events are stored when others in it are malformed", async () => {
    const { ingest } = ingestWith();
    const tenant = tenantName();
    const good = [gatewayEvent({ tenant }), gatewayEvent({ tenant })];
    await ingest.handleAudit(
      auditMessage(
        auditBatchBytes(good[0] as AuditEvent, gatewayEvent({ tenant: "" }), good[1] as AuditEvent),
        tenant,
      ),
    );
    assert.equal(ingest.stats().malformed, 1);
    assert.deepEqual(
      (await listEvents(db, tenant, {}, { limit: 10 })).map((r) => r.id).sort(),
      good.map((e) => e.id).sort(),
    );
  });

  test("an empty batch is malformed, not silently nothing", async () => {
    const { ingest } = ingestWith();
    await ingest.handleAudit(auditMessage(new Uint8Array(0)));
    assert.equal(ingest.stats().malformed, 1);
  });

  test("a row the database refuses is skipped without failing the rest of its batch", async () => {
    const { ingest } = ingestWith({ batchSize: 3, lingerMs: 1000 });
    const tenant = tenantName();
    // Stands in for a value validation lets through but PostgreSQL refuses (SQLSTATE 23514).
    await db.query(
      "ALTER TABLE audit.events ADD CONSTRAINT no_poison CHECK (upstream IS DISTINCT FROM 'poison')",
    );
    try {
      const events = [
        gatewayEvent({ tenant }),
        gatewayEvent({ tenant, upstream: "poison" }),
        gatewayEvent({ tenant }),
      ];
      await Promise.all(
        events.map((e) => ingest.handleAudit(auditMessage(auditBatchBytes(e), tenant))),
      );
      assert.deepEqual(
        (await listEvents(db, tenant, {}, { limit: 10 })).map((r) => r.id).sort(),
        [events[0]?.id, events[2]?.id].sort(),
      );
      assert.equal(ingest.stats().malformed, 1);
    } finally {
      await db.query("ALTER TABLE audit.events DROP CONSTRAINT no_poison");
    }
  });

  test("records a change as an AuditEvent with detail change and the traceparent's trace id", async () => {
    const { ingest } = ingestWith();
    const tenant = tenantName();
    const change = changeEvent({ tenant });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    await ingest.handleChange({
      subject: `latchkey.change.${tenant}.token`,
      data: changeBytes(change),
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    const [stored] = await listEvents(db, tenant, { traceId }, { limit: 10 });
    const event = rowEvent(stored?.event ?? new Uint8Array());
    assert.equal(event.id, change.id);
    assert.equal(event.tenant, tenant);
    assert.deepEqual(event.time, change.time);
    assert.equal(event.traceId, traceId);
    assert.equal(event.detail.case, "change");
    assert.deepEqual(event.detail.value, change);
  });

  test("stop() commits the batch still lingering before it returns", async () => {
    const { ingest } = ingestWith({ lingerMs: 60_000 });
    const tenant = tenantName();
    const handled = ingest.handleAudit(
      auditMessage(
        auditBatchBytes(gatewayEvent({ tenant, decision: GatewayDecision.DENIED })),
        tenant,
      ),
    );
    await ingest.stop();
    await handled;
    assert.equal(await countEvents(db, tenant), 1);
  });
});
