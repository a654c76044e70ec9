import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createHandlerContext } from "@connectrpc/connect";
import { skipUnless, type TestDatabase, testDatabase } from "../../test/fixtures/services.ts";
import { TokenService } from "../gen/latchkey/token/v1/token_pb.js";
import {
  type AdminKeyStore,
  authMigrations,
  createAdminKeyStore,
  createAuthenticator,
  generateAdminKey,
} from "./admin-keys.ts";
import { type Principal, principalKey, requireAdmin, requireGateway } from "./principal.ts";

const gatewayKey = "g".repeat(40);

describe("admin keys", { skip: await skipUnless("postgres") }, () => {
  let database: TestDatabase;
  let store: AdminKeyStore;
  before(async () => {
    database = await testDatabase({ migrate: [authMigrations] });
    store = createAdminKeyStore(database.db);
  });
  after(() => database?.close());

  test("a created key is stored only as a hash, found by lookup, and stops after revoke", async () => {
    const { key, record } = await store.create({
      role: "operator",
      tenants: ["acme"],
      displayName: "ci",
    });
    assert.match(key, /^lka_[0-9A-Za-z]{43}$/);
    const { rows } = await database.db.query("SELECT * FROM auth.admin_keys");
    assert.ok(
      !JSON.stringify(rows, (_k, v) => (v instanceof Uint8Array ? [...v] : v)).includes(key),
    );
    assert.deepEqual(await store.lookup(key), record);
    assert.equal(await store.revoke(record.id), true);
    assert.equal(await store.lookup(key), undefined);
    assert.equal(await store.revoke(record.id), false);
  });

  test("bootstrap registers an all-tenant admin once, however often it runs", async () => {
    const key = generateAdminKey();
    const first = await store.bootstrap(key);
    assert.equal(await store.bootstrap(key), first);
    assert.deepEqual(await store.lookup(key), {
      id: first,
      role: "admin",
      tenants: ["*"],
      displayName: "bootstrap",
    });
  });

  test("bad roles and tenants are refused", async () => {
    await assert.rejects(
      store.create({ role: "root" as "admin", tenants: ["acme"] }),
      /role must be one of/,
    );
    await assert.rejects(store.create({ role: "reader", tenants: [] }), /at least one tenant/);
    await assert.rejects(
      store.create({ role: "reader", tenants: ["Not A Tenant"] }),
      /invalid tenant/,
    );
  });

  test("the authenticator tells the gateway, admin keys and strangers apart", async () => {
    const { key, record } = await store.create({ role: "reader", tenants: ["acme"] });
    let now = 0;
    const authenticate = createAuthenticator({
      adminKeys: store,
      gatewayKey,
      cacheTtlMs: 1000,
      now: () => now,
    });
    assert.deepEqual(await authenticate(`Bearer ${gatewayKey}`), { kind: "gateway" });
    assert.deepEqual(await authenticate(`Bearer ${key}`), {
      kind: "admin",
      keyId: record.id,
      role: "reader",
      tenants: ["acme"],
    });
    assert.equal(await authenticate(`Bearer ${generateAdminKey()}`), undefined);
    assert.equal(await authenticate("Basic Zm9vOmJhcg=="), undefined);
    assert.equal(await authenticate(undefined), undefined);
    // A revoked key keeps working only until the short cache entry ends.
    await store.revoke(record.id);
    assert.equal((await authenticate(`Bearer ${key}`))?.kind, "admin");
    now += 1001;
    assert.equal(await authenticate(`Bearer ${key}`), undefined);
  });
});

describe("principals", () => {
  const ctxFor = (principal: Principal | undefined) => {
    const ctx = createHandlerContext({
      service: TokenService,
      method: TokenService.method.getToken,
      protocolName: "connect",
      requestMethod: "POST",
      url: "http://localhost/",
    });
    ctx.values.set(principalKey, principal);
    return ctx;
  };

  test("requireAdmin checks role and tenant scope", () => {
    const reader = ctxFor({ kind: "admin", keyId: "key_r", role: "reader", tenants: ["acme"] });
    assert.equal(requireAdmin(reader, "acme", "read").keyId, "key_r");
    assert.throws(() => requireAdmin(reader, "acme", "write"), /role reader may not write/);
    assert.throws(() => requireAdmin(reader, "other", "read"), /may not act on tenant other/);
    assert.throws(
      () => requireAdmin(ctxFor(undefined), "acme", "read"),
      /missing or invalid admin key/,
    );
    assert.throws(
      () => requireAdmin(ctxFor({ kind: "gateway" }), "acme", "read"),
      /gateway identity/,
    );
    const all = ctxFor({ kind: "admin", keyId: "key_a", role: "admin", tenants: ["*"] });
    assert.equal(requireAdmin(all, "anything", "manage").role, "admin");
  });

  test("requireGateway admits the gateway, and all-tenant admins only when asked", () => {
    assert.equal(requireGateway(ctxFor({ kind: "gateway" })).kind, "gateway");
    const admin = ctxFor({ kind: "admin", keyId: "key_a", role: "admin", tenants: ["*"] });
    assert.throws(() => requireGateway(admin), /only the gateway identity/);
    assert.equal(requireGateway(admin, "read").kind, "admin");
    const scoped = ctxFor({ kind: "admin", keyId: "key_s", role: "admin", tenants: ["acme"] });
    assert.throws(() => requireGateway(scoped, "read"), /only the gateway identity/);
  });
});
