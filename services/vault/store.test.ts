import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { isUniqueViolation, migrate } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import { InjectionSchemeSchema } from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { embeddedDb, skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { open, rewrap, seal } from "./envelope.ts";
import { createLocalKeyring } from "./keyring.ts";
import * as store from "./store.ts";

const kek1 = { version: 1, key: randomBytes(32) };
const keys = createLocalKeyring(kek1);
const plaintext = Buffer.from("sk_live_store_test_PLAINTEXT_9f8e7d");

/** A tenant of its own per test: the PGlite instance is shared by the whole file. */
const newTenant = (): string => `t-${randomBytes(5).toString("hex")}`;

const schemes = [
  create(InjectionSchemeSchema, { kind: { case: "bearer", value: {} } }),
  create(InjectionSchemeSchema, { kind: { case: "basic", value: {} } }),
  create(InjectionSchemeSchema, {
    kind: { case: "header", value: { headerNames: ["x-api-key", "x-org"] } },
  }),
  create(InjectionSchemeSchema, { kind: { case: "query", value: { parameter: "api_key" } } }),
];

function credential(tenant: string, id: string, extra: Partial<store.NewCredential> = {}) {
  return {
    tenant,
    id,
    displayName: `credential ${id}`,
    scheme: schemes[0] as (typeof schemes)[0],
    allowedOrigins: ["https://api.example.com"],
    currentVersion: 1,
    requestId: null,
    now: new Date(),
    ...extra,
  } satisfies store.NewCredential;
}

/** Inserts a credential with `versions` sealed versions, the last one current. */
async function insertWithVersions(db: Db, tenant: string, id: string, versions = 1) {
  await db.transaction(async (tx) => {
    await store.insertCredential(tx, credential(tenant, id, { currentVersion: versions }));
    for (let version = 1; version <= versions; version++) {
      const sealed = await seal(keys, { tenant, credentialId: id, version }, plaintext);
      await store.insertVersion(tx, tenant, id, version, sealed, new Date());
    }
  });
}

const engines = [
  {
    name: "PostgreSQL",
    skip: await skipUnless("postgres"),
    async open() {
      const { db, close } = await testDatabase({ migrate: [store.migrations] });
      return { db, close };
    },
  },
  {
    name: "PGlite",
    skip: undefined,
    async open() {
      const db = await embeddedDb();
      await migrate(db, store.migrations);
      return { db, close: async () => {} };
    },
  },
];

for (const engine of engines) {
  describe(`vault store on ${engine.name}`, { skip: engine.skip }, () => {
    let db: Db;
    let close: () => Promise<void>;
    before(async () => {
      ({ db, close } = await engine.open());
    });
    after(() => close());

    test("a credential round-trips, with each scheme", async () => {
      const tenant = newTenant();
      for (const [index, scheme] of schemes.entries()) {
        const now = new Date("2030-01-02T03:04:05.678Z");
        const inserted = await db.transaction((tx) =>
          store.insertCredential(
            tx,
            credential(tenant, `c${index}`, {
              scheme,
              allowedOrigins: ["https://a.example", "http://b.example:8080"],
              now,
            }),
          ),
        );
        const read = await store.selectCredential(db, tenant, `c${index}`);
        assert.deepEqual(read, inserted);
        assert.deepEqual(read?.scheme, scheme);
        assert.deepEqual(read?.allowedOrigins, ["https://a.example", "http://b.example:8080"]);
        assert.equal(read?.createTime.getTime(), now.getTime());
        assert.equal(read?.currentVersion, 1);
      }
    });

    test("a second insert with the same request_id inserts nothing", async () => {
      const tenant = newTenant();
      const first = await store.insertCredential(db, credential(tenant, "a", { requestId: "r1" }));
      assert.ok(first);
      const again = await store.insertCredential(db, credential(tenant, "b", { requestId: "r1" }));
      assert.equal(again, undefined);
      assert.equal((await store.selectCredentialByRequestId(db, tenant, "r1"))?.id, "a");
      // The key is per tenant.
      const elsewhere = newTenant();
      assert.ok(await store.insertCredential(db, credential(elsewhere, "b", { requestId: "r1" })));
    });

    test("a taken id is a unique violation", async () => {
      const tenant = newTenant();
      await store.insertCredential(db, credential(tenant, "dup"));
      await assert.rejects(store.insertCredential(db, credential(tenant, "dup")), (err) =>
        isUniqueViolation(err),
      );
    });

    test("every query stays inside its tenant", async () => {
      const acme = newTenant();
      const globex = newTenant();
      await insertWithVersions(db, acme, "shared-id");
      assert.equal(await store.selectCredential(db, globex, "shared-id"), undefined);
      assert.equal(await store.selectCurrentSealed(db, globex, "shared-id"), undefined);
      assert.deepEqual(await store.listCredentials(db, globex, undefined, 10), []);
      assert.deepEqual((await store.listVersions(db, globex, ["shared-id"])).get("shared-id"), []);
      assert.equal(
        await db.transaction((tx) => store.deleteCredential(tx, globex, "shared-id")),
        false,
      );
      assert.equal(
        await db.transaction((tx) =>
          store.setCurrentVersion(tx, globex, "shared-id", 0, new Date()),
        ),
        undefined,
      );
      // Still there, untouched, for its own tenant.
      assert.equal((await store.selectCredential(db, acme, "shared-id"))?.currentVersion, 1);
      assert.ok((await store.selectCurrentSealed(db, acme, "shared-id"))?.sealed);
    });

    test("the current version's sealed material is what resolution reads", async () => {
      const tenant = newTenant();
      await insertWithVersions(db, tenant, "rot", 2);
      const found = await store.selectCurrentSealed(db, tenant, "rot");
      assert.ok(found?.sealed);
      assert.equal(found.credential.currentVersion, 2);
      const slot = { tenant, credentialId: "rot", version: 2 };
      assert.deepEqual(Buffer.from(await open(keys, slot, found.sealed)), plaintext);

      await db.transaction(async (tx) => {
        await store.disableVersion(tx, tenant, "rot", 2);
        await store.setCurrentVersion(tx, tenant, "rot", 1, new Date());
      });
      const versions = (await store.listVersions(db, tenant, ["rot"])).get("rot");
      assert.deepEqual(
        versions?.map((v) => [v.version, v.state]),
        [
          [1, "enabled"],
          [2, "disabled"],
        ],
      );
      assert.equal(
        (await store.selectCurrentSealed(db, tenant, "rot"))?.credential.currentVersion,
        1,
      );

      await db.transaction((tx) => store.setCurrentVersion(tx, tenant, "rot", 0, new Date()));
      const none = await store.selectCurrentSealed(db, tenant, "rot");
      assert.ok(none);
      assert.equal(none.sealed, undefined);
    });

    test("a disabled version is never returned as sealed material", async () => {
      const tenant = newTenant();
      await insertWithVersions(db, tenant, "off");
      // Even if current_version still pointed at it, the join requires an enabled row.
      await db.transaction((tx) => store.disableVersion(tx, tenant, "off", 1));
      assert.equal((await store.selectCurrentSealed(db, tenant, "off"))?.sealed, undefined);
    });

    test("lists in id order, one page after another", async () => {
      const tenant = newTenant();
      for (const id of ["c", "a", "e", "b", "d"])
        await store.insertCredential(db, credential(tenant, id));
      const first = await store.listCredentials(db, tenant, undefined, 2);
      const second = await store.listCredentials(db, tenant, first.at(-1)?.id, 2);
      const third = await store.listCredentials(db, tenant, second.at(-1)?.id, 2);
      assert.deepEqual(
        [first, second, third].map((page) => page.map((row) => row.id)),
        [["a", "b"], ["c", "d"], ["e"]],
      );
    });

    test("deleting a credential deletes its versions", async () => {
      const tenant = newTenant();
      await insertWithVersions(db, tenant, "gone", 3);
      assert.equal(await db.transaction((tx) => store.deleteCredential(tx, tenant, "gone")), true);
      assert.equal(await store.selectCredential(db, tenant, "gone"), undefined);
      const { rows } = await db.query(
        "select count(*)::int as n from vault.credential_versions where tenant = $1",
        [tenant],
      );
      assert.equal(rows[0]?.n, 0);
    });

    test("no row holds the plaintext", async () => {
      const tenant = newTenant();
      await insertWithVersions(db, tenant, "raw", 2);
      const { rows } = await db.query(
        `select v.*, c.* from vault.credential_versions v
         join vault.credentials c on c.tenant = v.tenant and c.id = v.credential_id
         where v.tenant = $1`,
        [tenant],
      );
      assert.equal(rows.length, 2);
      for (const row of rows) {
        for (const value of Object.values(row)) {
          const bytes =
            value instanceof Uint8Array
              ? Buffer.from(value)
              : Buffer.from(JSON.stringify(value) ?? "");
          assert.equal(bytes.indexOf(plaintext), -1);
        }
      }
    });

    test("KEK rotation re-wraps rows of every tenant, in batches", async () => {
      const tenants = [newTenant(), newTenant()];
      for (const tenant of tenants) await insertWithVersions(db, tenant, "k", 2);
      const kek2 = { version: 2, key: randomBytes(32) };
      const rotated = createLocalKeyring(kek2, [kek1]);
      let moved = 0;
      for (;;) {
        const batch = await db.transaction(async (tx) => {
          const rows = await store.selectWrappedByOtherKek(tx, 2, 3);
          for (const row of rows) {
            const slot = {
              tenant: row.tenant,
              credentialId: row.credentialId,
              version: row.version,
            };
            await store.updateWrappedKey(tx, {
              ...row,
              sealed: await rewrap(rotated, slot, row.sealed),
            });
          }
          return rows.length;
        });
        moved += batch;
        if (batch === 0) break;
      }
      assert.ok(moved >= 4);
      const onlyKek2 = createLocalKeyring(kek2);
      for (const tenant of tenants) {
        const found = await store.selectCurrentSealed(db, tenant, "k");
        assert.equal(found?.sealed?.kekVersion, 2);
        assert.ok(found?.sealed);
        const slot = { tenant, credentialId: "k", version: 2 };
        assert.deepEqual(Buffer.from(await open(onlyKek2, slot, found.sealed)), plaintext);
      }
    });
  });
}
