import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { migrate } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { embeddedDb, skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { migrations } from "./component.ts";
import { auditBytes, changeBytes, changeEvent, gatewayEvent } from "./event-fixtures.ts";
import { auditPayloadToRow, changePayloadToRow, microsToIso, rowEvent } from "./event-row.ts";
import { countEvents, countUsage, insertEvents, listEvents } from "./store.ts";

const now = new Date();
const tenantName = () => `t-${randomBytes(4).toString("hex")}`;
const us = (ms: number) => BigInt(ms) * 1000n;

interface Engine {
  name: string;
  skip: string | undefined;
  open(): Promise<{ db: Db; close(): Promise<void> }>;
}

// The same SQL must behave the same on PostgreSQL (cluster) and PGlite (embedded).
const engines: Engine[] = [
  {
    name: "postgresql",
    skip: await skipUnless("postgres"),
    open: () => testDatabase({ migrate: [migrations] }),
  },
  {
    name: "pglite",
    skip: undefined,
    async open() {
      const db = await embeddedDb();
      await migrate(db, migrations);
      // Shared by the whole process: never closed.
      return { db, close: async () => {} };
    },
  },
];

for (const engine of engines) {
  describe(`audit store on ${engine.name}`, { skip: engine.skip }, () => {
    let opened: { db: Db; close(): Promise<void> };
    before(async () => {
      opened = await engine.open();
    });
    after(() => opened?.close());
    const db = async () => opened.db;

    test("inserts a batch once: stored rows and in-batch duplicates are skipped", async () => {
      const tenant = tenantName();
      const a = gatewayEvent({ tenant, traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
      const b = changeEvent({ tenant });
      const rows = [
        auditPayloadToRow(auditBytes(a), now),
        changePayloadToRow(changeBytes(b), {}, now),
      ];
      assert.equal(await insertEvents(await db(), rows), 2);
      assert.equal(await insertEvents(await db(), rows), 0);
      const again = auditPayloadToRow(auditBytes(a), now);
      assert.equal(await insertEvents(await db(), [again, again]), 0);
      const c = auditPayloadToRow(auditBytes(gatewayEvent({ tenant })), now);
      assert.equal(await insertEvents(await db(), [c, c]), 1);
      assert.equal(await countEvents(await db(), tenant), 3);
    });

    test("stores each event's time to the microsecond, up to the last one of 9999", async () => {
      const tenant = tenantName();
      const times = [1_700_000_000_123_456n, 253_402_300_799_999_999n, 1n];
      const rows = times.map((timeUs) => ({
        ...auditPayloadToRow(auditBytes(gatewayEvent({ tenant })), now),
        timeUs,
      }));
      await insertEvents(await db(), rows);
      const { rows: stored } = await (await db()).query<{ id: string; time: string }>(
        `SELECT id, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time
           FROM audit.events WHERE tenant = $1`,
        [tenant],
      );
      assert.deepEqual(
        new Map(stored.map((r) => [r.id, r.time])),
        new Map(rows.map((r) => [r.id, microsToIso(r.timeUs)])),
      );
    });

    test("stores indexed text exactly, whatever characters it holds", async () => {
      const tenant = tenantName();
      const texts = ['say "hi"', "C:\\path\\", 'a\\"b', "x,y", "{}", " padded ", "NULL", "é✓"];
      const rows = texts.map((text, i) => ({
        ...auditPayloadToRow(auditBytes(gatewayEvent({ tenant })), now),
        token: text,
        upstream: i % 2 === 0 ? null : text,
      }));
      assert.equal(await insertEvents(await db(), rows), texts.length);
      const { rows: stored } = await (await db()).query<{
        id: string;
        token: string | null;
        upstream: string | null;
      }>("SELECT id, token, upstream FROM audit.events WHERE tenant = $1", [tenant]);
      assert.deepEqual(
        new Map(stored.map((r) => [r.id, [r.token, r.upstream]])),
        new Map(rows.map((r) => [r.id, [r.token, r.upstream]])),
      );
    });

    test("returns exactly the recorded event, newest first, keyset-paged", async () => {
      const tenant = tenantName();
      const base = Date.now() - 60_000;
      // Different sizes: every row must get its own slice of the batch's bytes.
      const events = Array.from({ length: 5 }, (_, i) =>
        gatewayEvent({ tenant, timeMs: base + i, upstream: "u".repeat(1 + i * 40) }),
      );
      await insertEvents(
        await db(),
        events.map((e) => auditPayloadToRow(auditBytes(e), now)),
      );
      const first = await listEvents(await db(), tenant, {}, { limit: 3 });
      assert.deepEqual(
        first.map((r) => r.id),
        [events[4]?.id, events[3]?.id, events[2]?.id],
      );
      assert.deepEqual(
        first.map((r) => rowEvent(r.event)),
        [events[4], events[3], events[2]],
      );
      const rest = await listEvents(await db(), tenant, {}, { limit: 3, beforeId: first[2]?.id });
      assert.deepEqual(
        rest.map((r) => rowEvent(r.event)),
        [events[1], events[0]],
      );
    });

    test("filters by every field and never crosses tenants", async () => {
      const tenant = tenantName();
      const other = tenantName();
      const base = Date.now() - 60_000;
      const token = `tenants/${tenant}/tokens/tok_01jd4k00000000000000000abc`;
      const trace = "0af7651916cd43dd8448eb211c80319c";
      const allowed = gatewayEvent({ tenant, timeMs: base, token, traceId: trace });
      const denied = gatewayEvent({
        tenant,
        timeMs: base + 1000,
        upstream: "openai",
        decision: GatewayDecision.DENIED,
        status: 403,
      });
      const change = changeEvent({ tenant, timeMs: base + 2000, resource: token });
      const foreign = gatewayEvent({ tenant: other, timeMs: base, token, traceId: trace });
      await insertEvents(await db(), [
        auditPayloadToRow(auditBytes(allowed), now),
        auditPayloadToRow(auditBytes(denied), now),
        changePayloadToRow(changeBytes(change), {}, now),
        auditPayloadToRow(auditBytes(foreign), now),
      ]);
      const ids = async (selection: Parameters<typeof listEvents>[2]) =>
        (await listEvents(await db(), tenant, selection, { limit: 100 })).map((r) => r.id);
      assert.deepEqual(await ids({}), [change.id, denied.id, allowed.id]);
      assert.deepEqual(await ids({ token }), [change.id, allowed.id]);
      assert.deepEqual(await ids({ upstream: "openai" }), [denied.id]);
      assert.deepEqual(await ids({ decision: GatewayDecision.DENIED }), [denied.id]);
      assert.deepEqual(await ids({ traceId: trace }), [allowed.id]);
      assert.deepEqual(await ids({ kind: "change" }), [change.id]);
      assert.deepEqual(await ids({ kind: "gateway_request" }), [denied.id, allowed.id]);
      assert.deepEqual(await ids({ startUs: us(base + 1000) }), [change.id, denied.id]);
      assert.deepEqual(await ids({ endUs: us(base + 1000) }), [allowed.id]);
      assert.deepEqual(await ids({ startUs: us(base + 500), endUs: us(base + 1500) }), [denied.id]);
      assert.deepEqual(
        (await listEvents(await db(), other, {}, { limit: 100 })).map((r) => r.id),
        [foreign.id],
      );
    });

    test("counts gateway requests by token, upstream and decision in [start, end)", async () => {
      const tenant = tenantName();
      const base = Date.now() - 60_000;
      const tokenA = `tenants/${tenant}/tokens/tok_01jd4k0000000000000000000a`;
      const events = [
        gatewayEvent({ tenant, timeMs: base, token: tokenA }),
        gatewayEvent({ tenant, timeMs: base + 1, token: tokenA }),
        gatewayEvent({ tenant, timeMs: base + 2, token: tokenA, decision: GatewayDecision.DENIED }),
        gatewayEvent({
          tenant,
          timeMs: base + 3,
          token: "",
          decision: GatewayDecision.UNAUTHENTICATED,
        }),
        // Outside the window: exactly at its end.
        gatewayEvent({ tenant, timeMs: base + 10, token: tokenA }),
        gatewayEvent({ tenant: tenantName(), timeMs: base, token: tokenA }),
      ];
      await insertEvents(await db(), [
        ...events.map((e) => auditPayloadToRow(auditBytes(e), now)),
        changePayloadToRow(
          changeBytes(changeEvent({ tenant, timeMs: base, resource: tokenA })),
          {},
          now,
        ),
      ]);
      const counts = await countUsage(await db(), tenant, {
        startUs: us(base),
        endUs: us(base + 10),
      });
      assert.deepEqual(
        counts.map((c) => ({ ...c, count: Number(c.count) })),
        [
          { token: "", upstream: "stripe", decision: GatewayDecision.UNAUTHENTICATED, count: 1 },
          { token: tokenA, upstream: "stripe", decision: GatewayDecision.ALLOWED, count: 2 },
          { token: tokenA, upstream: "stripe", decision: GatewayDecision.DENIED, count: 1 },
        ],
      );
    });
  });
}

describe("audit store: migration 0002 on a table written by 0001", {
  skip: engines[0]?.skip,
}, () => {
  test("keeps every row, still skips a redelivered one and finds rows by trace id", async () => {
    // A migrations folder holding 0001 alone: the schema as deployments before 0002 have it.
    const only0001 = await mkdtemp(join(tmpdir(), "audit-0001-"));
    await copyFile(new URL("0001_init.sql", migrations.dir), join(only0001, "0001_init.sql"));
    const opened = await testDatabase({
      migrate: [{ ...migrations, dir: pathToFileURL(`${only0001}/`) }],
    });
    try {
      const tenant = tenantName();
      const trace = "4bf92f3577b34da6a3ce929d0e0e4736";
      const rows = [
        auditPayloadToRow(auditBytes(gatewayEvent({ tenant, traceId: trace })), now),
        changePayloadToRow(changeBytes(changeEvent({ tenant })), {}, now),
      ];
      assert.equal(await insertEvents(opened.db, rows), 2);

      await migrate(opened.db, migrations);

      const listed = await listEvents(opened.db, tenant, {}, { limit: 10 });
      assert.deepEqual(new Set(listed.map((r) => r.id)), new Set(rows.map((r) => r.id)));
      assert.equal(await insertEvents(opened.db, rows), 0);
      const byTrace = await listEvents(opened.db, tenant, { traceId: trace }, { limit: 10 });
      assert.deepEqual(
        byTrace.map((r) => r.id),
        [rows[0]?.id],
      );
      const { rows: indexes } = await opened.db.query<{ indexname: string }>(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'audit' AND tablename = 'events' ORDER BY 1",
      );
      assert.deepEqual(
        indexes.map((r) => r.indexname),
        ["events_pkey", "events_tenant_time", "events_tenant_token_id", "events_trace"],
      );
    } finally {
      await opened.close();
      await rm(only0001, { recursive: true, force: true });
    }
  });
});
