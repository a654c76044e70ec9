import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Authenticator, Principal } from "../../libs/auth/principal.ts";
import { openBus } from "../../libs/bus/index.ts";
import type { Bus, BusMessage } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import {
  ChangeAction,
  type ChangeEvent,
  ChangeEventSchema,
  ResourceType,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  type Credential,
  CredentialSchema,
  CredentialVersionState,
  type InjectionScheme,
  InjectionSchemeSchema,
  type SecretMaterial,
  SecretMaterialSchema,
  VaultService,
} from "../../libs/gen/latchkey/vault/v1/vault_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { createInProcessTransport } from "../../libs/rpc/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { skipUnless, testDatabase } from "../../test/fixtures/services.ts";
import { createVaultComponent, migrations } from "./component.ts";
import { createLocalKeyring, type KeyEncryptionKeys } from "./keyring.ts";

// Every secret in this file shares a marker, so one search finds any leak.
const marker = "LEAKCHECK";
const secret = (name: string): string => `${marker}_${name}_${randomBytes(6).toString("hex")}`;

const principals: Record<string, Principal> = {
  "acme-admin": { kind: "admin", keyId: "key_acme", role: "admin", tenants: ["acme"] },
  "acme-reader": { kind: "admin", keyId: "key_reader", role: "reader", tenants: ["acme"] },
  "globex-admin": { kind: "admin", keyId: "key_globex", role: "admin", tenants: ["globex"] },
  root: { kind: "admin", keyId: "key_root", role: "admin", tenants: ["*"] },
  gateway: { kind: "gateway" },
};
const authenticate: Authenticator = async (header) =>
  header?.startsWith("Bearer ") ? principals[header.slice("Bearer ".length)] : undefined;

const kek1 = { version: 1, key: randomBytes(32) };
const origin = "https://api.example.com";

const bearer = create(InjectionSchemeSchema, { kind: { case: "bearer", value: {} } });
const token = (value: string) => create(SecretMaterialSchema, { kind: { case: "token", value } });

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}

/** Asserts that a message (binary and JSON) carries no secret of this file. */
function assertNoMaterial(label: string, bytes: Uint8Array, json: string): void {
  assert.equal(Buffer.from(bytes).indexOf(marker), -1, `${label}: material in the binary form`);
  assert.ok(!json.includes(marker), `${label}: material in the JSON form`);
}

function assertCredentialHasNoMaterial(credential: Credential | undefined): void {
  assert.ok(credential);
  assertNoMaterial(
    credential.name,
    toBinary(CredentialSchema, credential),
    toJsonString(CredentialSchema, credential),
  );
}

/** Every log line of the file's services and RPC layer, checked for leaks at the end. */
const logLines: string[] = [];
const capturedLog = createLogger({
  level: "trace",
  destination: new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  }),
});

/** A VaultService client calling `component` in process, as the holder of `credential`. */
function clientOf(component: Component, credential?: string) {
  const transport = createInProcessTransport({
    routes: (router) => component.routes(router),
    authenticate,
    log: capturedLog,
    ...(credential ? { credential } : {}),
  });
  return createClient(VaultService, transport);
}

const skip = await skipUnless("postgres");

after(() => {
  // Whatever the tests did (refusals included, which the RPC layer logs), no line carried material.
  if (skip) return;
  assert.ok(logLines.length > 0);
  for (const line of logLines) assert.ok(!line.includes(marker), `material logged: ${line}`);
});

describe("VaultService in memory", { skip }, () => {
  let db: Db;
  let closeDb: () => Promise<void>;
  let bus: Bus;
  let vault: Component;

  before(async () => {
    ({ db, close: closeDb } = await testDatabase({ migrate: [migrations] }));
    bus = await openBus();
    vault = createVaultComponent({
      db,
      bus,
      log: capturedLog,
      keys: createLocalKeyring(kek1),
      leaseMs: 120_000,
    });
    await vault.start();
  });

  const client = (credential?: string) => clientOf(vault, credential);
  const acme = () => client("acme-admin");
  const gateway = () => client("gateway");

  async function createBearer(id: string, material = secret(id)) {
    const res = await acme().createCredential({
      parent: "tenants/acme",
      credentialId: id,
      credential: { displayName: id, scheme: bearer, allowedOrigins: [origin] },
      material: token(material),
    });
    return { credential: res.credential, material };
  }

  /** Change events of the vault outbox, oldest first, decoded. */
  async function outboxEvents(resource: string): Promise<ChangeEvent[]> {
    const { rows } = await db.query<{ subject: string; payload: Uint8Array }>(
      "select subject, payload from vault.outbox order by seq",
    );
    return rows
      .map((row) => ({ row, event: fromBinary(ChangeEventSchema, row.payload) }))
      .filter(({ event }) => event.resource === resource)
      .map(({ row, event }) => {
        assert.equal(row.subject, `latchkey.change.${event.tenant}.credential`);
        assertNoMaterial("event", row.payload, toJsonString(ChangeEventSchema, event));
        return event;
      });
  }

  after(async () => {
    await vault.stop();
    await bus.close();
    await closeDb();
  });

  test("each scheme: create, read back without material, resolve as the gateway", async () => {
    const cases: [string, InjectionScheme, SecretMaterial][] = [
      ["bearer", bearer, token(secret("bearer"))],
      [
        "header",
        create(InjectionSchemeSchema, {
          kind: { case: "header", value: { headerNames: ["x-api-key", "x-org"] } },
        }),
        create(SecretMaterialSchema, {
          kind: {
            case: "headers",
            value: { values: { "x-api-key": secret("header"), "x-org": secret("org") } },
          },
        }),
      ],
      [
        "basic",
        create(InjectionSchemeSchema, { kind: { case: "basic", value: {} } }),
        create(SecretMaterialSchema, {
          kind: { case: "basic", value: { username: "svc", password: secret("basic") } },
        }),
      ],
      [
        "query",
        create(InjectionSchemeSchema, { kind: { case: "query", value: { parameter: "key" } } }),
        token(secret("query")),
      ],
    ];
    for (const [id, scheme, material] of cases) {
      const created = await acme().createCredential({
        parent: "tenants/acme",
        credentialId: `scheme-${id}`,
        credential: {
          displayName: `The ${id} one`,
          scheme,
          allowedOrigins: ["HTTPS://API.EXAMPLE.COM:443/", "http://localhost:8080"],
        },
        material,
      });
      const credential = created.credential;
      assertCredentialHasNoMaterial(credential);
      assert.equal(credential?.name, `tenants/acme/credentials/scheme-${id}`);
      assert.deepEqual(credential?.allowedOrigins, [origin, "http://localhost:8080"]);
      assert.equal(credential?.currentVersion, 1);
      assert.equal(credential?.versions[0]?.state, CredentialVersionState.ENABLED);

      const got = await acme().getCredential({ name: `tenants/acme/credentials/scheme-${id}` });
      assertCredentialHasNoMaterial(got.credential);
      assert.deepEqual(got.credential, credential);

      const resolved = await gateway().resolveCredential({
        name: `tenants/acme/credentials/scheme-${id}`,
        origin,
      });
      assert.equal(resolved.version, 1);
      assert.deepEqual(resolved.scheme, scheme);
      assert.deepEqual(resolved.material, material);
      assert.equal(resolved.lease && durationMs(resolved.lease), 120_000);
    }
    const listed = await acme().listCredentials({ parent: "tenants/acme" });
    for (const credential of listed.credentials) assertCredentialHasNoMaterial(credential);
  });

  test("generates a cred_ id when none is given", async () => {
    const res = await acme().createCredential({
      parent: "tenants/acme",
      credential: { scheme: bearer, allowedOrigins: [origin] },
      material: token(secret("generated")),
    });
    assert.match(res.credential?.name ?? "", /^tenants\/acme\/credentials\/cred_[0-9a-z]{26}$/);
  });

  test("only the gateway identity receives material", async () => {
    const { credential } = await createBearer("gw-only");
    const name = credential?.name ?? "";
    for (const caller of ["acme-admin", "root"]) {
      const err = await failure(client(caller).resolveCredential({ name, origin }));
      assert.equal(err.code, Code.PermissionDenied, caller);
    }
    const anonymous = await failure(client().resolveCredential({ name, origin }));
    assert.equal(anonymous.code, Code.Unauthenticated);
    // And the gateway is no admin: it cannot read or write metadata.
    const err = await failure(gateway().getCredential({ name }));
    assert.equal(err.code, Code.PermissionDenied);
  });

  test("refuses any origin the credential is not bound to", async () => {
    const { credential, material } = await createBearer("bound");
    const name = credential?.name ?? "";
    for (const other of [
      "https://evil.example.com",
      "http://api.example.com",
      "https://api.example.com:8443",
      "https://api.example.com.evil.example",
    ]) {
      const err = await failure(gateway().resolveCredential({ name, origin: other }));
      assert.equal(err.code, Code.PermissionDenied, other);
      assert.ok(!err.message.includes(material));
    }
    const malformed = await failure(
      gateway().resolveCredential({ name, origin: "https://api.example.com/path" }),
    );
    assert.equal(malformed.code, Code.InvalidArgument);
    // Another spelling of the bound origin is the same origin.
    const ok = await gateway().resolveCredential({ name, origin: "https://API.example.com:443" });
    assert.equal(ok.material?.kind.value, material);
  });

  test("rotation: add a version, disable it, fall back, disable all, recover", async () => {
    const { credential, material: v1 } = await createBearer("rotating");
    const name = credential?.name ?? "";
    const resolve = () => gateway().resolveCredential({ name, origin });

    const v2 = secret("v2");
    const added = await acme().addCredentialVersion({ name, material: token(v2) });
    assertCredentialHasNoMaterial(added.credential);
    assert.equal(added.credential?.currentVersion, 2);
    assert.deepEqual(
      added.credential?.versions.map((v) => [v.version, v.state]),
      [
        [1, CredentialVersionState.ENABLED],
        [2, CredentialVersionState.ENABLED],
      ],
    );
    assert.equal((await resolve()).version, 2);
    assert.equal((await resolve()).material?.kind.value, v2);

    const disabled = await acme().disableCredentialVersion({ name, version: 2 });
    assertCredentialHasNoMaterial(disabled.credential);
    assert.equal(disabled.credential?.currentVersion, 1);
    assert.equal(disabled.credential?.versions[1]?.state, CredentialVersionState.DISABLED);
    assert.equal((await resolve()).version, 1);
    assert.equal((await resolve()).material?.kind.value, v1);

    // Disabling a disabled version changes nothing.
    const again = await acme().disableCredentialVersion({ name, version: 2 });
    assert.equal(again.credential?.currentVersion, 1);

    // The kill switch: no enabled version left, nothing resolves.
    const none = await acme().disableCredentialVersion({ name, version: 1 });
    assert.equal(none.credential?.currentVersion, 0);
    assert.equal((await failure(resolve())).code, Code.FailedPrecondition);

    const v3 = secret("v3");
    const recovered = await acme().addCredentialVersion({ name, material: token(v3) });
    assert.equal(recovered.credential?.currentVersion, 3);
    assert.equal((await resolve()).material?.kind.value, v3);

    const missing = await failure(acme().disableCredentialVersion({ name, version: 9 }));
    assert.equal(missing.code, Code.NotFound);
  });

  test("a new version must fit the credential's scheme", async () => {
    const { credential } = await createBearer("fit");
    const wrong = secret("wrong");
    const err = await failure(
      acme().addCredentialVersion({
        name: credential?.name ?? "",
        material: create(SecretMaterialSchema, {
          kind: { case: "basic", value: { username: "u", password: wrong } },
        }),
      }),
    );
    assert.equal(err.code, Code.InvalidArgument);
    assert.ok(!err.message.includes(wrong));
    const got = await acme().getCredential({ name: credential?.name ?? "" });
    assert.equal(got.credential?.versions.length, 1);
  });

  test("create refuses bad input without echoing material", async () => {
    const leaked = secret("bad");
    const attempts = [
      { credential: { scheme: bearer, allowedOrigins: [origin] } }, // no material
      { credential: { scheme: bearer, allowedOrigins: [] }, material: token(leaked) },
      { credential: { scheme: bearer, allowedOrigins: ["ftp://x"] }, material: token(leaked) },
      { credential: { allowedOrigins: [origin] }, material: token(leaked) },
      {
        credential: { scheme: bearer, allowedOrigins: [origin] },
        material: create(SecretMaterialSchema, {
          kind: { case: "headers", value: { values: { [leaked]: leaked } } },
        }),
      },
      {
        credential: { scheme: bearer, allowedOrigins: [origin] },
        material: token(leaked),
        credentialId: "Not_Valid",
      },
    ];
    for (const attempt of attempts) {
      const err = await failure(acme().createCredential({ parent: "tenants/acme", ...attempt }));
      assert.equal(err.code, Code.InvalidArgument, err.message);
      assert.ok(!err.message.includes(marker), err.message);
    }
  });

  test("a taken id is AlreadyExists; a retried request_id returns the first result", async () => {
    await createBearer("taken");
    const err = await failure(createBearer("taken"));
    assert.equal(err.code, Code.AlreadyExists);

    const request = {
      parent: "tenants/acme",
      requestId: "retry-1",
      credential: { scheme: bearer, allowedOrigins: [origin] },
      material: token(secret("idem")),
    };
    const first = await acme().createCredential(request);
    const second = await acme().createCredential(request);
    assert.deepEqual(second.credential, first.credential);
    assert.equal((await outboxEvents(first.credential?.name ?? "")).length, 1);
  });

  test("delete removes the credential and its material", async () => {
    const { credential } = await createBearer("doomed");
    const name = credential?.name ?? "";
    await acme().deleteCredential({ name });
    assert.equal((await failure(acme().getCredential({ name }))).code, Code.NotFound);
    assert.equal(
      (await failure(gateway().resolveCredential({ name, origin }))).code,
      Code.NotFound,
    );
    assert.equal((await failure(acme().deleteCredential({ name }))).code, Code.NotFound);
    const { rows } = await db.query(
      "select 1 from vault.credential_versions where tenant = 'acme' and credential_id = 'doomed'",
    );
    assert.equal(rows.length, 0);
  });

  test("tenants are isolated", async () => {
    const { credential } = await createBearer("acme-only");
    const name = credential?.name ?? "";
    const globex = client("globex-admin");
    // A key for globex cannot touch acme, whatever the call.
    for (const call of [
      globex.getCredential({ name }),
      globex.listCredentials({ parent: "tenants/acme" }),
      globex.deleteCredential({ name }),
      globex.addCredentialVersion({ name, material: token(secret("x")) }),
      globex.disableCredentialVersion({ name, version: 1 }),
      globex.createCredential({
        parent: "tenants/acme",
        credential: { scheme: bearer, allowedOrigins: [origin] },
        material: token(secret("x")),
      }),
    ]) {
      assert.equal((await failure(call)).code, Code.PermissionDenied);
    }
    // The same id under another tenant is another (missing) credential.
    const foreign = "tenants/globex/credentials/acme-only";
    assert.equal((await failure(globex.getCredential({ name: foreign }))).code, Code.NotFound);
    assert.equal(
      (await failure(gateway().resolveCredential({ name: foreign, origin }))).code,
      Code.NotFound,
    );
    assert.deepEqual((await globex.listCredentials({ parent: "tenants/globex" })).credentials, []);
    // And acme's credential is untouched.
    assert.equal((await acme().getCredential({ name })).credential?.currentVersion, 1);
  });

  test("a reader reads metadata but cannot change anything", async () => {
    const { credential } = await createBearer("read-me");
    const reader = client("acme-reader");
    const name = credential?.name ?? "";
    assert.equal((await reader.getCredential({ name })).credential?.name, name);
    assert.equal((await failure(reader.deleteCredential({ name }))).code, Code.PermissionDenied);
    assert.equal(
      (await failure(reader.addCredentialVersion({ name, material: token(secret("r")) }))).code,
      Code.PermissionDenied,
    );
  });

  test("lists page by page", async () => {
    for (const id of ["page-a", "page-b", "page-c"]) {
      await client("root").createCredential({
        parent: "tenants/paging",
        credentialId: id,
        credential: { scheme: bearer, allowedOrigins: [origin] },
        material: token(secret(id)),
      });
    }
    const root = client("root");
    const first = await root.listCredentials({ parent: "tenants/paging", pageSize: 2 });
    assert.deepEqual(
      first.credentials.map((c) => c.name),
      ["tenants/paging/credentials/page-a", "tenants/paging/credentials/page-b"],
    );
    assert.notEqual(first.nextPageToken, "");
    const second = await root.listCredentials({
      parent: "tenants/paging",
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    assert.deepEqual(
      second.credentials.map((c) => c.name),
      ["tenants/paging/credentials/page-c"],
    );
    assert.equal(second.nextPageToken, "");
    assert.equal(second.credentials[0]?.versions.length, 1);
  });

  test("the database never holds the plaintext", async () => {
    const { material } = await createBearer("at-rest");
    await acme().addCredentialVersion({
      name: "tenants/acme/credentials/at-rest",
      material: token(`${material}-v2`),
    });
    for (const table of ["credentials", "credential_versions", "outbox"]) {
      const { rows } = await db.query(`select * from vault.${table}`);
      assert.ok(rows.length > 0);
      for (const row of rows) {
        for (const value of Object.values(row as Record<string, unknown>)) {
          const bytes =
            value instanceof Uint8Array
              ? Buffer.from(value)
              : Buffer.from(JSON.stringify(value) ?? "");
          assert.equal(bytes.indexOf(marker), -1, `plaintext in vault.${table}`);
        }
      }
    }
  });

  test("every change is announced, in order, without material", async () => {
    const { credential } = await createBearer("announced");
    const name = credential?.name ?? "";
    await acme().addCredentialVersion({ name, material: token(secret("v2")) });
    await acme().disableCredentialVersion({ name, version: 2 });
    await acme().deleteCredential({ name });
    const events = await outboxEvents(name);
    assert.deepEqual(
      events.map((e) => [e.action, Number(e.version)]),
      [
        [ChangeAction.CREATED, 1],
        [ChangeAction.UPDATED, 2],
        [ChangeAction.UPDATED, 1],
        [ChangeAction.DELETED, 0],
      ],
    );
    for (const event of events) {
      assert.equal(event.tenant, "acme");
      assert.equal(event.resourceType, ResourceType.CREDENTIAL);
      assert.equal(event.actor, "key_acme");
    }
  });

  test("the relay publishes change events on the bus", async () => {
    const received: BusMessage[] = [];
    let arrived: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const subscription = bus.subscribe("latchkey.change.acme.credential", (message) => {
      received.push(message);
      if (fromBinary(ChangeEventSchema, message.data).resource.endsWith("/published")) arrived();
    });
    try {
      await createBearer("published");
      await done;
    } finally {
      await subscription.stop();
    }
    const event = received
      .map((m) => fromBinary(ChangeEventSchema, m.data))
      .find((e) => e.resource === "tenants/acme/credentials/published");
    assert.equal(event?.action, ChangeAction.CREATED);
  });
});

describe("RotateKeyEncryptionKey", { skip }, () => {
  test("re-wraps every data key; the old KEK can then be retired", async (t) => {
    // A database of its own: rotation re-wraps every row of every tenant.
    const { db, close } = await testDatabase({ migrate: [migrations] });
    t.after(close);
    const bus = await openBus();
    t.after(() => bus.close());
    const vaultWith = (keys: KeyEncryptionKeys) =>
      createVaultComponent({ db, bus, log: capturedLog, keys });
    const kek2 = { version: 2, key: randomBytes(32) };
    const oldVault = vaultWith(createLocalKeyring(kek1));
    const rotating = vaultWith(createLocalKeyring(kek2, [kek1]));
    const newVault = vaultWith(createLocalKeyring(kek2));

    const material = secret("kek");
    const names: string[] = [];
    for (const tenant of ["acme", "globex"]) {
      for (const id of ["one", "two"]) {
        const res = await clientOf(oldVault, "root").createCredential({
          parent: `tenants/${tenant}`,
          credentialId: id,
          credential: { scheme: bearer, allowedOrigins: [origin] },
          material: token(material),
        });
        names.push(res.credential?.name ?? "");
      }
    }

    const denied = await failure(clientOf(rotating, "acme-admin").rotateKeyEncryptionKey({}));
    assert.equal(denied.code, Code.PermissionDenied);

    const res = await clientOf(rotating, "root").rotateKeyEncryptionKey({});
    assert.equal(res.kekVersion, 2);
    assert.equal(res.rewrapped, 4n);
    const again = await clientOf(rotating, "root").rotateKeyEncryptionKey({});
    assert.equal(again.rewrapped, 0n);

    for (const name of names) {
      const resolved = await clientOf(newVault, "gateway").resolveCredential({ name, origin });
      assert.equal(resolved.material?.kind.value, material);
      // A vault that only knows the old KEK can no longer read it.
      const stale = await failure(
        clientOf(oldVault, "gateway").resolveCredential({ name, origin }),
      );
      assert.equal(stale.code, Code.FailedPrecondition);
    }
  });
});
