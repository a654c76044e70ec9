import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Db } from "../../libs/db/types.ts";
import {
  allUpstreams,
  currentPolicyVersion,
  deleteUpstream,
  findUpstreamByRequestId,
  getPolicySet,
  getUpstream,
  getUpstreamsBySlug,
  insertPolicySet,
  insertUpstream,
  listPolicySets,
  listUpstreams,
  type NewUpstream,
  updateUpstream,
} from "./store.ts";
import { testEngines } from "./test-databases.ts";

const t0 = new Date("2030-01-01T00:00:00Z");
let counter = 0;
/** A tenant of its own per test, so tests sharing one database never see each other. */
const freshTenant = () => `p${process.pid}-${++counter}`;

function upstream(tenant: string, slug: string, over: Partial<NewUpstream> = {}): NewUpstream {
  return {
    tenant,
    slug,
    displayName: slug,
    origin: `https://${slug}.example.com`,
    basePath: "",
    credential: "",
    requestTimeoutMs: 30_000,
    maxRequestBodyBytes: 10 * 1024 * 1024,
    auditMode: "async",
    forwardCookies: false,
    requestId: null,
    now: t0,
    ...over,
  };
}

for (const engine of await testEngines()) {
  describe(`policy store (${engine.name})`, { skip: engine.skip }, () => {
    let db: Db;
    let close: () => Promise<void>;
    before(async () => {
      ({ db, close } = await engine.open());
    });
    after(async () => close?.());

    test("inserts, reads, lists and deletes upstreams", async () => {
      const tenant = freshTenant();
      const row = await insertUpstream(db, upstream(tenant, "stripe", { basePath: "/v1" }));
      assert.ok(row);
      assert.equal(row.version, 1);
      assert.equal(row.basePath, "/v1");
      assert.equal(row.maxRequestBodyBytes, 10 * 1024 * 1024);
      assert.deepEqual(row.createTime, t0);
      assert.deepEqual(await getUpstream(db, tenant, "stripe"), row);
      await insertUpstream(db, upstream(tenant, "github"));
      await insertUpstream(db, upstream(tenant, "openai"));
      const page1 = await listUpstreams(db, tenant, { limit: 2 });
      assert.deepEqual(
        page1.map((u) => u.slug),
        ["github", "openai"],
      );
      const page2 = await listUpstreams(db, tenant, { afterSlug: "openai", limit: 2 });
      assert.deepEqual(
        page2.map((u) => u.slug),
        ["stripe"],
      );
      assert.deepEqual(
        (await allUpstreams(db, tenant)).map((u) => u.slug),
        ["github", "openai", "stripe"],
      );
      assert.deepEqual(
        (await getUpstreamsBySlug(db, tenant, ["stripe", "nope"])).map((u) => u.slug),
        ["stripe"],
      );
      assert.equal(await deleteUpstream(db, tenant, "stripe"), 1);
      assert.equal(await deleteUpstream(db, tenant, "stripe"), undefined);
      assert.equal(await getUpstream(db, tenant, "stripe"), undefined);
    });

    test("a duplicate slug or request_id inserts nothing", async () => {
      const tenant = freshTenant();
      assert.ok(await insertUpstream(db, upstream(tenant, "stripe", { requestId: "r1" })));
      assert.equal(await insertUpstream(db, upstream(tenant, "stripe")), undefined);
      assert.equal(
        await insertUpstream(db, upstream(tenant, "other", { requestId: "r1" })),
        undefined,
      );
      assert.equal((await findUpstreamByRequestId(db, tenant, "r1"))?.slug, "stripe");
      // The same slug and request_id in another tenant are independent.
      assert.ok(await insertUpstream(db, upstream(freshTenant(), "stripe", { requestId: "r1" })));
    });

    test("updates bump the version", async () => {
      const tenant = freshTenant();
      const row = await insertUpstream(db, upstream(tenant, "stripe"));
      assert.ok(row);
      const t1 = new Date("2030-01-02T00:00:00Z");
      const updated = await updateUpstream(
        db,
        tenant,
        "stripe",
        { ...row, origin: "https://x.example", forwardCookies: true },
        t1,
      );
      assert.equal(updated?.version, 2);
      assert.equal(updated?.origin, "https://x.example");
      assert.equal(updated?.forwardCookies, true);
      assert.deepEqual(updated?.updateTime, t1);
      assert.deepEqual(updated?.createTime, t0);
      assert.equal(await updateUpstream(db, tenant, "missing", row, t1), undefined);
    });

    test("every query is scoped to its tenant", async () => {
      const a = freshTenant();
      const b = freshTenant();
      const row = await insertUpstream(db, upstream(a, "stripe", { requestId: "ra" }));
      assert.ok(row);
      await insertPolicySet(db, {
        tenant: a,
        version: 1,
        rules: [{ id: "x" }],
        author: "key_a",
        createTime: t0,
      });
      assert.equal(await getUpstream(db, b, "stripe"), undefined);
      assert.equal(await findUpstreamByRequestId(db, b, "ra"), undefined);
      assert.deepEqual(await listUpstreams(db, b, { limit: 10 }), []);
      assert.deepEqual(await getUpstreamsBySlug(db, b, ["stripe"]), []);
      assert.equal(await updateUpstream(db, b, "stripe", row, t0), undefined);
      assert.equal(await deleteUpstream(db, b, "stripe"), undefined);
      assert.equal(await currentPolicyVersion(db, b), 0);
      assert.equal(await getPolicySet(db, b, 0), undefined);
      assert.equal(await getPolicySet(db, b, 1), undefined);
      assert.deepEqual(await listPolicySets(db, b, { limit: 10 }), []);
      assert.ok(await getUpstream(db, a, "stripe"));
    });

    test("policy set versions are kept, newest first, and a taken version inserts nothing", async () => {
      const tenant = freshTenant();
      assert.equal(await currentPolicyVersion(db, tenant), 0);
      for (let v = 1; v <= 3; v++) {
        const row = await insertPolicySet(db, {
          tenant,
          version: v,
          rules: [{ id: `r${v}`, effect: "EFFECT_ALLOW" }],
          author: "key_1",
          createTime: t0,
        });
        assert.equal(row?.version, v);
      }
      assert.equal(
        await insertPolicySet(db, {
          tenant,
          version: 3,
          rules: [],
          author: "key_2",
          createTime: t0,
        }),
        undefined,
      );
      assert.equal(await currentPolicyVersion(db, tenant), 3);
      assert.deepEqual((await getPolicySet(db, tenant, 0))?.rules, [
        { id: "r3", effect: "EFFECT_ALLOW" },
      ]);
      assert.equal((await getPolicySet(db, tenant, 2))?.version, 2);
      assert.equal(await getPolicySet(db, tenant, 9), undefined);
      const first = await listPolicySets(db, tenant, { limit: 2 });
      assert.deepEqual(
        first.map((p) => p.version),
        [3, 2],
      );
      const rest = await listPolicySets(db, tenant, { beforeVersion: 2, limit: 2 });
      assert.deepEqual(
        rest.map((p) => p.version),
        [1],
      );
    });
  });
}
