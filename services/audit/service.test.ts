import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Authenticator, Principal } from "../../libs/auth/principal.ts";
import { createMemoryBus } from "../../libs/bus/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { AuditService, EventKind } from "../../libs/gen/latchkey/audit/v1/audit_pb.js";
import { type AuditEvent, GatewayDecision } from "../../libs/gen/latchkey/events/v1/events_pb.js";
import { unknownTenant } from "../../libs/names/index.ts";
import { createInProcessTransport } from "../../libs/rpc/index.ts";
import { skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { createAuditComponent, migrations } from "./component.ts";
import {
  auditBytes,
  captureLog,
  changeBytes,
  changeEvent,
  gatewayEvent,
} from "./event-fixtures.ts";
import { auditPayloadToRow, changePayloadToRow } from "./event-row.ts";
import { insertEvents } from "./store.ts";

const tenantA = `a-${randomBytes(4).toString("hex")}`;
const tenantB = `b-${randomBytes(4).toString("hex")}`;
const parentA = `tenants/${tenantA}`;
const parentB = `tenants/${tenantB}`;

const principals: Record<string, Principal> = {
  "Bearer auditor-a": {
    kind: "admin",
    keyId: "key_auditor_a",
    role: "auditor",
    tenants: [tenantA],
  },
  "Bearer reader-a": { kind: "admin", keyId: "key_reader_a", role: "reader", tenants: [tenantA] },
  "Bearer admin-all": { kind: "admin", keyId: "key_admin", role: "admin", tenants: ["*"] },
  "Bearer gateway": { kind: "gateway" },
};
const authenticate: Authenticator = async (header) => (header ? principals[header] : undefined);

async function codeOf(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  assert.fail("expected the call to fail");
}

describe("AuditService", { skip: await skipUnless("postgres") }, () => {
  let db: Db;
  let close: () => Promise<void>;
  const bus = createMemoryBus();
  const { log } = captureLog();
  const clientAs = (credential?: string) => {
    const component = createAuditComponent({ db, bus, log });
    return createClient(
      AuditService,
      createInProcessTransport({
        routes: (router) => component.routes(router),
        authenticate,
        log,
        ...(credential && { credential }),
      }),
    );
  };
  const store = async (...events: AuditEvent[]) => {
    await insertEvents(
      db,
      events.map((e) => auditPayloadToRow(auditBytes(e), new Date())),
    );
  };

  before(async () => {
    ({ db, close } = await testDatabase({ migrate: [migrations] }));
  });
  after(async () => {
    await bus.close();
    await close?.();
  });

  describe("ListEvents", () => {
    const base = Date.now() - 3_600_000;
    const tokenA = `tenants/${tenantA}/tokens/tok_01jd4k0000000000000000000a`;
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const a1 = gatewayEvent({ tenant: tenantA, timeMs: base, token: tokenA, traceId });
    const a2 = gatewayEvent({
      tenant: tenantA,
      timeMs: base + 1000,
      upstream: "openai",
      decision: GatewayDecision.DENIED,
      status: 403,
    });
    const a3 = gatewayEvent({ tenant: tenantA, timeMs: base + 2000, token: tokenA });
    const change = changeEvent({ tenant: tenantA, timeMs: base + 3000, resource: tokenA });
    const b1 = gatewayEvent({ tenant: tenantB, timeMs: base + 500, token: tokenA, traceId });

    before(async () => {
      await store(a1, a2, a3, b1);
      await insertEvents(db, [changePayloadToRow(changeBytes(change), {}, new Date())]);
    });

    test("returns the tenant's events as recorded, newest first", async () => {
      const res = await clientAs("auditor-a").listEvents({ parent: parentA });
      assert.deepEqual(
        res.events.map((e) => e.id),
        [change.id, a3.id, a2.id, a1.id],
      );
      assert.deepEqual(res.events[1], a3);
      assert.equal(res.events[0]?.detail.case, "change");
      assert.equal(res.nextPageToken, "");
    });

    test("pages with a cursor: no event repeats or goes missing", async () => {
      const client = clientAs("auditor-a");
      const first = await client.listEvents({ parent: parentA, pageSize: 3 });
      assert.deepEqual(
        first.events.map((e) => e.id),
        [change.id, a3.id, a2.id],
      );
      assert.notEqual(first.nextPageToken, "");
      // An event recorded between the pages is newer than the cursor: it does not shift them.
      await store(gatewayEvent({ tenant: tenantA }));
      const second = await client.listEvents({
        parent: parentA,
        pageSize: 3,
        pageToken: first.nextPageToken,
      });
      assert.deepEqual(
        second.events.map((e) => e.id),
        [a1.id],
      );
      assert.equal(second.nextPageToken, "");
    });

    test("applies every filter field", async () => {
      const client = clientAs("auditor-a");
      const window = { startTime: timestampFromMs(base), endTime: timestampFromMs(base + 3000) };
      const ids = async (filter: Parameters<typeof client.listEvents>[0]["filter"]) =>
        (await client.listEvents({ parent: parentA, filter })).events.map((e) => e.id);
      assert.deepEqual(await ids({ token: tokenA }), [change.id, a3.id, a1.id]);
      assert.deepEqual(await ids({ token: tokenA, kind: EventKind.GATEWAY_REQUEST }), [
        a3.id,
        a1.id,
      ]);
      assert.deepEqual(await ids({ upstream: "openai" }), [a2.id]);
      assert.deepEqual(await ids({ decision: GatewayDecision.DENIED }), [a2.id]);
      assert.deepEqual(await ids({ traceId: traceId.toUpperCase() }), [a1.id]);
      assert.deepEqual(await ids({ kind: EventKind.CHANGE }), [change.id]);
      assert.deepEqual(await ids(window), [a3.id, a2.id, a1.id]);
    });

    test("never returns another tenant's events, even for its token or trace id", async () => {
      const client = clientAs("admin-all");
      const res = await client.listEvents({ parent: parentB, filter: { traceId } });
      assert.deepEqual(
        res.events.map((e) => e.id),
        [b1.id],
      );
      const other = await client.listEvents({ parent: parentB, filter: { token: tokenA } });
      assert.deepEqual(
        other.events.map((e) => e.id),
        [b1.id],
      );
    });

    test("refuses callers that may not read this tenant's audit log", async () => {
      const request = { parent: parentB };
      assert.equal(await codeOf(clientAs("auditor-a").listEvents(request)), Code.PermissionDenied);
      assert.equal(
        await codeOf(clientAs("reader-a").listEvents({ parent: parentA })),
        Code.PermissionDenied,
      );
      assert.equal(await codeOf(clientAs("gateway").listEvents(request)), Code.PermissionDenied);
      assert.equal(await codeOf(clientAs().listEvents(request)), Code.Unauthenticated);
    });

    test("rejects malformed requests with InvalidArgument", async () => {
      const client = clientAs("auditor-a");
      const invalid = [
        { parent: "acme" },
        { parent: parentA, pageToken: "not-a-token" },
        { parent: parentA, pageSize: -1 },
        { parent: parentA, filter: { token: "tok_123" } },
        { parent: parentA, filter: { upstream: "Not A Slug" } },
        { parent: parentA, filter: { traceId: "xyz" } },
        { parent: parentA, filter: { decision: 99 } },
        { parent: parentA, filter: { kind: 7 } },
        {
          parent: parentA,
          filter: { startTime: timestampFromMs(base + 1), endTime: timestampFromMs(base) },
        },
      ];
      for (const [i, request] of invalid.entries()) {
        assert.equal(await codeOf(client.listEvents(request)), Code.InvalidArgument, `case ${i}`);
      }
    });

    test("pages 100 events by default and at most 1000", async () => {
      const tenant = `p-${randomBytes(4).toString("hex")}`;
      await store(
        ...Array.from({ length: 1001 }, (_, i) => gatewayEvent({ tenant, timeMs: base + i })),
      );
      const client = clientAs("admin-all");
      const byDefault = await client.listEvents({ parent: `tenants/${tenant}` });
      assert.equal(byDefault.events.length, 100);
      const capped = await client.listEvents({ parent: `tenants/${tenant}`, pageSize: 5000 });
      assert.equal(capped.events.length, 1000);
      const rest = await client.listEvents({
        parent: `tenants/${tenant}`,
        pageSize: 5000,
        pageToken: capped.nextPageToken,
      });
      assert.equal(rest.events.length, 1);
      assert.equal(rest.nextPageToken, "");
    });
  });

  describe("GetUsage", () => {
    const tenant = `u-${randomBytes(4).toString("hex")}`;
    const parent = `tenants/${tenant}`;
    const token = `tenants/${tenant}/tokens/tok_01jd4k0000000000000000000a`;

    test("counts gateway requests by token, upstream and decision over a window", async () => {
      const base = Date.now() - 3_600_000;
      await store(
        gatewayEvent({ tenant, timeMs: base, token }),
        gatewayEvent({ tenant, timeMs: base + 1, token }),
        gatewayEvent({ tenant, timeMs: base + 2, token, decision: GatewayDecision.DENIED }),
        gatewayEvent({ tenant, timeMs: base + 5000, token }),
      );
      const res = await clientAs("admin-all").getUsage({
        parent,
        startTime: timestampFromMs(base),
        endTime: timestampFromMs(base + 5000),
      });
      assert.deepEqual(
        res.rows.map((r) => [r.token, r.upstream, r.decision, r.count]),
        [
          [token, "stripe", GatewayDecision.ALLOWED, 2n],
          [token, "stripe", GatewayDecision.DENIED, 1n],
        ],
      );
    });

    test("defaults to the last 24 hours", async () => {
      const other = `v-${randomBytes(4).toString("hex")}`;
      await store(
        gatewayEvent({ tenant: other, timeMs: Date.now() - 60_000, upstream: "recent" }),
        gatewayEvent({ tenant: other, timeMs: Date.now() - 2 * 86_400_000, upstream: "old" }),
      );
      const res = await clientAs("admin-all").getUsage({ parent: `tenants/${other}` });
      assert.deepEqual(
        res.rows.map((r) => [r.upstream, r.count]),
        [["recent", 1n]],
      );
    });

    test("refuses other tenants and a window that ends before it starts", async () => {
      assert.equal(await codeOf(clientAs("auditor-a").getUsage({ parent })), Code.PermissionDenied);
      assert.equal(
        await codeOf(
          clientAs("admin-all").getUsage({
            parent,
            startTime: timestampFromMs(2000),
            endTime: timestampFromMs(1000),
          }),
        ),
        Code.InvalidArgument,
      );
    });
  });

  test("StreamEvents refuses keys of another tenant", async () => {
    const stream = clientAs("auditor-a").streamEvents({ parent: parentB });
    assert.equal(
      await codeOf(
        (async () => {
          for await (const _ of stream) break;
        })(),
      ),
      Code.PermissionDenied,
    );
  });

  test("requests refused before any tenant was known are readable by all-tenant admins only", async () => {
    const event = gatewayEvent({
      tenant: unknownTenant,
      token: "",
      decision: GatewayDecision.UNAUTHENTICATED,
      status: 401,
    });
    await store(event);
    const parent = `tenants/${unknownTenant}`;
    const { events } = await clientAs("admin-all").listEvents({ parent });
    assert.ok(events.some((e) => e.id === event.id));
    assert.equal(await codeOf(clientAs("auditor-a").listEvents({ parent })), Code.PermissionDenied);
  });

  test("VerifyChain is not implemented yet", async () => {
    assert.equal(
      await codeOf(clientAs("admin-all").verifyChain({ parent: parentA })),
      Code.Unimplemented,
    );
  });
});
