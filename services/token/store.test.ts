import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { migrate } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { newId } from "../../libs/ids/index.ts";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { embeddedDb, skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { createSecretHasher } from "./secret-hash.ts";
import {
  findBySecretHash,
  findTokenByRequestId,
  getToken,
  insertSecret,
  insertToken,
  listTokens,
  migrations,
  type NewToken,
  revokeToken,
  type TokenRow,
  updateToken,
} from "./store.ts";

const hash = createSecretHasher("store-test-pepper-0123456789abcdef");
const t0 = new Date("2030-01-01T00:00:00Z");
let tenantCounter = 0;
/** A tenant of its own per test, so tests sharing one database never see each other. */
const freshTenant = () => `t${process.pid}-${++tenantCounter}`;

function newToken(tenant: string, overrides: Partial<NewToken> = {}): NewToken {
  return {
    tenant,
    id: newId("token", (overrides.now ?? t0).getTime()),
    displayName: "ci",
    subject: "app",
    attributes: { team: "core", "env.name": "prod" },
    allowedUpstreams: ["stripe", "openai"],
    expireTime: null,
    displayPrefix: "lk_abcde",
    requestId: null,
    now: t0,
    ...overrides,
  };
}

/** Inserts a token with a fresh secret; returns the row and the secret. */
async function seed(db: Db, token: NewToken) {
  const { secret, displayPrefix } = generateTokenSecret();
  const row = await db.transaction(async (tx) => {
    const inserted = await insertToken(tx, { ...token, displayPrefix });
    assert.ok(inserted);
    await insertSecret(tx, {
      hash: hash(secret),
      tenant: token.tenant,
      tokenId: token.id,
      displayPrefix,
      now: token.now,
    });
    return inserted;
  });
  return { row, secret };
}

function storeSuite(engine: string, open: () => Promise<{ db: Db; close(): Promise<void> }>) {
  describe(`token store on ${engine}`, () => {
    let db: Db;
    let close: () => Promise<void> = async () => {};
    before(async () => {
      ({ db, close } = await open());
      await migrate(db, migrations);
    });
    after(() => close());

    test("a token round-trips with its types intact", async () => {
      const tenant = freshTenant();
      const expireTime = new Date("2031-02-03T04:05:06.789Z");
      const { row } = await seed(db, newToken(tenant, { expireTime, requestId: "r1" }));
      const got = await getToken(db, tenant, row.id);
      assert.deepEqual(got, row);
      assert.equal(got?.version, 1);
      assert.equal(got?.state, "active");
      assert.deepEqual(got?.attributes, { team: "core", "env.name": "prod" });
      assert.deepEqual(got?.allowedUpstreams, ["stripe", "openai"]);
      assert.deepEqual(got?.expireTime, expireTime);
      assert.deepEqual(got?.createTime, t0);
      assert.equal(got?.revokeTime, null);
      assert.equal(got?.requestId, "r1");
    });

    test("finds a token by its secret's hash, and nothing for another secret", async () => {
      const tenant = freshTenant();
      const { row, secret } = await seed(db, newToken(tenant));
      const found = await findBySecretHash(db, hash(secret));
      assert.deepEqual(found, {
        tenant,
        id: row.id,
        subject: "app",
        attributes: { team: "core", "env.name": "prod" },
        allowedUpstreams: ["stripe", "openai"],
        expireTime: null,
        state: "active",
        secretExpireTime: null,
      });
      assert.equal(await findBySecretHash(db, hash(generateTokenSecret().secret)), undefined);
    });

    test("stores the hash and display prefix, never the secret", async () => {
      const tenant = freshTenant();
      const { row, secret } = await seed(db, newToken(tenant));
      const tokens = await db.query("select * from token.tokens where tenant = $1", [tenant]);
      const secrets = await db.query("select * from token.token_secrets where tenant = $1", [
        tenant,
      ]);
      const dump = JSON.stringify([tokens.rows, secrets.rows], (_k, v) =>
        v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v,
      );
      assert.ok(!dump.includes(secret));
      assert.ok(!dump.includes(secret.slice(8)), "not even the part after the display prefix");
      const stored = secrets.rows[0]?.hash;
      assert.ok(stored instanceof Uint8Array);
      assert.deepEqual(Buffer.from(stored), hash(secret));
      assert.equal(row.displayPrefix, secret.slice(0, 8));
    });

    test("one token per (tenant, request_id); other tenants may reuse the key", async () => {
      const tenant = freshTenant();
      const { row } = await seed(db, newToken(tenant, { requestId: "same" }));
      const again = await db.transaction((tx) =>
        insertToken(tx, newToken(tenant, { requestId: "same" })),
      );
      assert.equal(again, undefined);
      assert.equal((await findTokenByRequestId(db, tenant, "same"))?.id, row.id);
      const other = freshTenant();
      assert.ok(
        await db.transaction((tx) => insertToken(tx, newToken(other, { requestId: "same" }))),
      );
      assert.equal(await findTokenByRequestId(db, freshTenant(), "same"), undefined);
    });

    test("a token has at most one current secret", async () => {
      const tenant = freshTenant();
      const { row } = await seed(db, newToken(tenant));
      await assert.rejects(
        insertSecret(db, {
          hash: hash(generateTokenSecret().secret),
          tenant,
          tokenId: row.id,
          displayPrefix: "lk_zzzzz",
          now: t0,
        }),
      );
    });

    test("queries by tenant never return another tenant's token", async () => {
      const a = freshTenant();
      const b = freshTenant();
      const { row } = await seed(db, newToken(a, { requestId: "k" }));
      assert.equal(await getToken(db, b, row.id), undefined);
      assert.deepEqual(await listTokens(db, b, { showRevoked: true, limit: 10 }), []);
      assert.equal(await findTokenByRequestId(db, b, "k"), undefined);
      assert.equal(await db.transaction((tx) => revokeToken(tx, b, row.id, "", t0)), undefined);
      const changes = { ...row, displayName: "stolen" };
      assert.equal(
        await db.transaction((tx) => updateToken(tx, b, row.id, changes, t0)),
        undefined,
      );
      assert.equal((await getToken(db, a, row.id))?.state, "active");
      assert.equal((await getToken(db, a, row.id))?.displayName, "ci");
    });

    test("lists newest first with keyset positions and filters", async () => {
      const tenant = freshTenant();
      const rows: TokenRow[] = [];
      for (let i = 0; i < 5; i++) {
        const now = new Date(t0.getTime() + i * 1000);
        rows.push((await seed(db, newToken(tenant, { now, subject: i % 2 ? "odd" : "even" }))).row);
      }
      const ids = rows.map((r) => r.id).reverse();
      const all = await listTokens(db, tenant, { showRevoked: false, limit: 10 });
      assert.deepEqual(
        all.map((r) => r.id),
        ids,
      );
      const page1 = await listTokens(db, tenant, { showRevoked: false, limit: 2 });
      const page2 = await listTokens(db, tenant, {
        showRevoked: false,
        limit: 2,
        beforeId: page1.at(-1)?.id,
      });
      assert.deepEqual(
        [...page1, ...page2].map((r) => r.id),
        ids.slice(0, 4),
      );
      const odd = await listTokens(db, tenant, { showRevoked: false, limit: 10, subject: "odd" });
      assert.deepEqual(
        odd.map((r) => r.id),
        [rows[3]?.id, rows[1]?.id],
      );
      await db.transaction((tx) => revokeToken(tx, tenant, rows[4]?.id ?? "", "", t0));
      const active = await listTokens(db, tenant, { showRevoked: false, limit: 10 });
      assert.deepEqual(
        active.map((r) => r.id),
        ids.slice(1),
      );
      const withRevoked = await listTokens(db, tenant, { showRevoked: true, limit: 10 });
      assert.equal(withRevoked.length, 5);
    });

    test("update bumps the version; revoke is final and happens once", async () => {
      const tenant = freshTenant();
      const { row, secret } = await seed(db, newToken(tenant));
      const t1 = new Date(t0.getTime() + 60_000);
      const updated = await db.transaction((tx) =>
        updateToken(
          tx,
          tenant,
          row.id,
          { ...row, displayName: "renamed", attributes: {}, allowedUpstreams: [] },
          t1,
        ),
      );
      assert.equal(updated?.version, 2);
      assert.equal(updated?.displayName, "renamed");
      assert.deepEqual(updated?.attributes, {});
      assert.deepEqual(updated?.allowedUpstreams, []);
      assert.deepEqual(updated?.updateTime, t1);
      assert.deepEqual(updated?.createTime, t0);

      const revoked = await db.transaction((tx) => revokeToken(tx, tenant, row.id, "leaked", t1));
      assert.equal(revoked?.state, "revoked");
      assert.equal(revoked?.version, 3);
      assert.deepEqual(revoked?.revokeTime, t1);
      assert.equal(revoked?.revokeReason, "leaked");
      assert.equal(
        await db.transaction((tx) => revokeToken(tx, tenant, row.id, "", t1)),
        undefined,
      );
      assert.equal(
        await db.transaction((tx) => updateToken(tx, tenant, row.id, row, t1)),
        undefined,
      );
      assert.equal((await findBySecretHash(db, hash(secret)))?.state, "revoked");
    });
  });
}

const postgresSkip = await skipUnless("postgres");
if (postgresSkip) {
  describe("token store on PostgreSQL", { skip: postgresSkip }, () => {});
} else {
  storeSuite("PostgreSQL", () => testDatabase());
}
// PGlite is what embedded mode runs: the same SQL must work there too.
storeSuite("PGlite", async () => ({ db: await embeddedDb(), close: async () => {} }));
