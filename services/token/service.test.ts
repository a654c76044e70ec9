import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import {
  durationFromMs,
  durationMs,
  timestampDate,
  timestampFromDate,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Authenticator, Principal } from "../../libs/auth/principal.ts";
import { openBus } from "../../libs/bus/index.ts";
import type { Bus, BusMessage } from "../../libs/bus/types.ts";
import { migrate } from "../../libs/db/index.ts";
import type { Db } from "../../libs/db/types.ts";
import {
  ChangeAction,
  type ChangeEvent,
  ChangeEventSchema,
  ResourceType,
} from "../../libs/gen/latchkey/events/v1/events_pb.js";
import {
  TokenService,
  TokenState,
  VerifyFailure,
} from "../../libs/gen/latchkey/token/v1/token_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { createInProcessTransport } from "../../libs/rpc/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { embeddedDb, testDatabase, testDatabaseUrl } from "../../test/fixtures/services.ts";
import { createTokenComponent, migrations } from "./component.ts";

/**
 * TokenService through the generated client over an in-process Connect transport with the
 * real server interceptors (auth, error mapping), on PostgreSQL (PGlite when no server
 * is reachable). Credentials in these tests name the principal they stand for:
 * `admin:<tenant>`, `admin:*`, `reader:<tenant>` or `gateway`.
 */
const authenticate: Authenticator = async (header) => {
  const credential = header?.replace(/^Bearer /, "") ?? "";
  if (credential === "gateway") return { kind: "gateway" };
  const [role, tenant] = credential.split(":");
  if ((role === "admin" || role === "reader") && tenant) {
    const principal: Principal = {
      kind: "admin",
      keyId: `key_${role}_${tenant}`,
      role,
      tenants: [tenant],
    };
    return principal;
  }
  return undefined;
};

let tenantCounter = 0;
const freshTenant = () => `t${process.pid}-${++tenantCounter}`;

let db: Db;
let closeDb: () => Promise<void> = async () => {};
let bus: Bus;
let component: Component;
let now = new Date("2030-01-01T00:00:00Z");
const logChunks: string[] = [];
const events: { subject: string; event: ChangeEvent; raw: BusMessage }[] = [];
const waiters = new Set<() => void>();

before(async () => {
  if (await testDatabaseUrl()) ({ db, close: closeDb } = await testDatabase());
  else db = await embeddedDb();
  await migrate(db, migrations);
  bus = await openBus();
  bus.subscribe("latchkey.change.>", (message) => {
    events.push({
      subject: message.subject,
      event: fromBinary(ChangeEventSchema, message.data),
      raw: message,
    });
    for (const wake of waiters) wake();
  });
  const log = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk, _enc, cb) {
        logChunks.push(String(chunk));
        cb();
      },
    }),
  });
  component = createTokenComponent({
    db,
    bus,
    log,
    pepper: "service-test-pepper-0123456789abcdef",
    clock: () => now,
  });
  await component.start();
});

after(async () => {
  await component.stop();
  await bus.close();
  await closeDb();
});

function client(credential?: string) {
  const transport = createInProcessTransport({
    routes: (router) => component.routes(router),
    authenticate,
    log: createLogger({ level: "silent" }),
    ...(credential ? { credential } : {}),
  });
  return createClient(TokenService, transport);
}

async function codeOf(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  assert.fail("expected the call to fail");
}

/** Waits until the change events of `tenant` match `count` (relay publishes after commit). */
async function changesOf(tenant: string, count: number) {
  const mine = () => events.filter((e) => e.event.tenant === tenant);
  const deadline = Date.now() + 10_000;
  while (mine().length < count) {
    if (Date.now() > deadline) assert.fail(`expected ${count} change events, got ${mine().length}`);
    await new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        resolve();
      };
      waiters.add(wake);
      setTimeout(wake, 100);
    });
  }
  return mine();
}

/** Every outbox row's payload, decoded, for one tenant: what was committed, not yet sent. */
async function outboxOf(tenant: string): Promise<ChangeEvent[]> {
  const { rows } = await db.query<{ payload: Uint8Array }>(
    "select payload from token.outbox order by seq",
  );
  return rows
    .map((r) => fromBinary(ChangeEventSchema, r.payload))
    .filter((e) => e.tenant === tenant);
}

describe("TokenService", () => {
  test("create → verify OK → revoke → verify REVOKED", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const gateway = client("gateway");
    const created = await admin.createToken({
      parent: `tenants/${tenant}`,
      token: {
        displayName: "billing app",
        subject: "app:billing",
        attributes: { team: "payments" },
        allowedUpstreams: ["stripe"],
      },
    });
    const token = created.token;
    assert.ok(token);
    assert.match(token.name, new RegExp(`^tenants/${tenant}/tokens/tok_[0-9a-z]{26}$`));
    assert.match(created.secret, /^lk_[0-9A-Za-z]{33}$/);
    assert.equal(token.displayPrefix, created.secret.slice(0, 8));
    assert.equal(token.state, TokenState.ACTIVE);
    assert.equal(token.etag, "v1");
    assert.equal(token.expireTime, undefined);

    const ok = await gateway.verifyToken({ secret: created.secret });
    assert.equal(ok.failure, VerifyFailure.UNSPECIFIED);
    assert.equal(ok.claims?.name, token.name);
    assert.equal(ok.claims?.tenant, tenant);
    assert.equal(ok.claims?.subject, "app:billing");
    assert.deepEqual(ok.claims?.attributes, { team: "payments" });
    assert.deepEqual(ok.claims?.allowedUpstreams, ["stripe"]);
    assert.equal(ok.cacheTtl && durationMs(ok.cacheTtl), 60_000);

    const got = await admin.getToken({ name: token.name });
    assert.deepEqual(got.token, token);

    const revoked = await admin.revokeToken({ name: token.name, reason: "laptop lost" });
    assert.equal(revoked.token?.state, TokenState.REVOKED);
    assert.ok(revoked.token?.revokeTime);
    assert.equal(revoked.token?.etag, "v2");
    const refused = await gateway.verifyToken({ secret: created.secret });
    assert.equal(refused.failure, VerifyFailure.REVOKED);
    assert.equal(refused.claims?.name, token.name, "the refusal can be audited under the token");
    assert.equal(refused.claims?.subject, "");

    // Revoking again is not an error and changes nothing.
    const again = await admin.revokeToken({ name: token.name });
    assert.deepEqual(again.token, revoked.token);
    const changes = await changesOf(tenant, 2);
    assert.deepEqual(
      changes.map((c) => c.event.action),
      [ChangeAction.CREATED, ChangeAction.REVOKED],
    );
    assert.equal((await outboxOf(tenant)).length, 2);
  });

  test("change events go out through the outbox with the actor and resource", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const { token } = await admin.createToken({ parent: `tenants/${tenant}`, token: {} });
    assert.ok(token);
    await admin.updateToken({
      token: { name: token.name, displayName: "renamed" },
      updateMask: { paths: ["display_name"] },
    });
    await admin.revokeToken({ name: token.name });
    const changes = await changesOf(tenant, 3);
    assert.deepEqual(
      changes.map((c) => [c.subject, c.event.action, c.event.version]),
      [
        [`latchkey.change.${tenant}.token`, ChangeAction.CREATED, 1n],
        [`latchkey.change.${tenant}.token`, ChangeAction.UPDATED, 2n],
        [`latchkey.change.${tenant}.token`, ChangeAction.REVOKED, 3n],
      ],
    );
    for (const { event } of changes) {
      assert.equal(event.resource, token.name);
      assert.equal(event.resourceType, ResourceType.TOKEN);
      assert.equal(event.actor, `key_admin_${tenant}`);
      assert.match(event.id, /^evt_/);
      assert.deepEqual(event.time && timestampDate(event.time), now);
    }
    // Committed in the same transactions as the changes: the outbox holds the same events.
    assert.deepEqual(
      (await outboxOf(tenant)).map((e) => e.id),
      changes.map((c) => c.event.id),
    );
  });

  test("a created token's secret appears nowhere: rows, outbox, events, logs", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const { token, secret } = await admin.createToken({
      parent: `tenants/${tenant}`,
      token: { displayName: "leak check" },
      requestId: "leak-check",
    });
    assert.ok(token && secret);
    await client("gateway").verifyToken({ secret });
    await admin.revokeToken({ name: token.name });
    await client("gateway").verifyToken({ secret });
    const changes = await changesOf(tenant, 2);

    const bytesToText = (_k: string, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v;
    const tables = ["token.tokens", "token.token_secrets", "token.outbox"];
    for (const table of tables) {
      const { rows } = await db.query(`select * from ${table}`);
      const dump = JSON.stringify(rows, bytesToText);
      assert.ok(!dump.includes(secret), `${table} holds the secret`);
      assert.ok(!dump.includes(secret.slice(8)), `${table} holds the secret's tail`);
    }
    for (const { raw } of changes) {
      assert.ok(!Buffer.from(raw.data).includes(Buffer.from(secret)));
      assert.ok(!JSON.stringify(raw.headers).includes(secret));
    }
    assert.ok(logChunks.length > 0, "the service logged something");
    assert.ok(!logChunks.join("").includes(secret.slice(8)), "a log line holds the secret");
  });

  test("an expired token is refused, and extending its expiry revives it", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const gateway = client("gateway");
    const start = now;
    const { token, secret } = await admin.createToken({
      parent: `tenants/${tenant}`,
      token: {},
      ttl: durationFromMs(120_000),
    });
    assert.ok(token?.expireTime);
    const valid = await gateway.verifyToken({ secret });
    assert.equal(valid.failure, VerifyFailure.UNSPECIFIED);
    assert.deepEqual(valid.claims?.expireTime, token.expireTime);

    // Thirty seconds before expiry the cache TTL shrinks to what is left.
    now = new Date(start.getTime() + 90_000);
    const late = await gateway.verifyToken({ secret });
    assert.equal(late.cacheTtl && durationMs(late.cacheTtl), 30_000);

    now = new Date(start.getTime() + 121_000);
    try {
      assert.equal((await gateway.verifyToken({ secret })).failure, VerifyFailure.EXPIRED);
      const extended = await admin.updateToken({
        token: {
          name: token.name,
          expireTime: timestampFromDate(new Date(now.getTime() + 3_600_000)),
        },
        updateMask: { paths: ["expire_time"] },
      });
      assert.equal(extended.token?.state, TokenState.ACTIVE);
      assert.equal((await gateway.verifyToken({ secret })).failure, VerifyFailure.UNSPECIFIED);
      // Naming expire_time without a value removes the expiry.
      const forever = await admin.updateToken({
        token: { name: token.name },
        updateMask: { paths: ["expire_time"] },
      });
      assert.equal(forever.token?.expireTime, undefined);
    } finally {
      now = start;
    }
  });

  test("the same request_id returns the first token, without its secret", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const request = {
      parent: `tenants/${tenant}`,
      token: { displayName: "once" },
      requestId: "r-1",
    };
    const first = await admin.createToken(request);
    const second = await admin.createToken(request);
    const concurrent = await Promise.all([admin.createToken(request), admin.createToken(request)]);
    assert.ok(first.secret);
    assert.equal(second.secret, "");
    assert.deepEqual(second.token, first.token);
    for (const res of concurrent) assert.deepEqual(res.token, first.token);
    const other = await admin.createToken({ ...request, requestId: "r-2" });
    assert.notEqual(other.token?.name, first.token?.name);
    assert.ok(other.secret);
    // The same key in another tenant is another token.
    const elsewhere = freshTenant();
    const there = await client(`admin:${elsewhere}`).createToken({
      ...request,
      parent: `tenants/${elsewhere}`,
    });
    assert.ok(there.secret);
    const created = (await outboxOf(tenant)).filter((e) => e.action === ChangeAction.CREATED);
    assert.equal(created.length, 2, "one CREATED event per token, none for retries");
    const list = await admin.listTokens({ parent: `tenants/${tenant}` });
    assert.equal(list.tokens.length, 2);
  });

  test("lists newest first across pages, with filters", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const start = now;
    const names: string[] = [];
    try {
      for (let i = 0; i < 7; i++) {
        now = new Date(start.getTime() + i * 1000);
        const { token } = await admin.createToken({
          parent: `tenants/${tenant}`,
          token: { subject: i % 2 === 0 ? "even" : "odd" },
        });
        names.push(token?.name ?? "");
      }
    } finally {
      now = start;
    }
    const newestFirst = [...names].reverse();
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await admin.listTokens({ parent: `tenants/${tenant}`, pageSize: 3, pageToken });
      seen.push(...page.tokens.map((t) => t.name));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    assert.equal(pages, 3);
    assert.deepEqual(seen, newestFirst);

    const odd = await admin.listTokens({ parent: `tenants/${tenant}`, subject: "odd" });
    assert.deepEqual(
      odd.tokens.map((t) => t.name),
      newestFirst.filter((_, i) => i % 2 === 1),
    );
    assert.equal(odd.nextPageToken, "");

    await admin.revokeToken({ name: names[0] ?? "" });
    const active = await admin.listTokens({ parent: `tenants/${tenant}` });
    assert.equal(active.tokens.length, 6);
    const all = await admin.listTokens({ parent: `tenants/${tenant}`, showRevoked: true });
    assert.equal(all.tokens.length, 7);
    assert.equal(all.tokens.at(-1)?.state, TokenState.REVOKED);

    const first = await admin.listTokens({ parent: `tenants/${tenant}`, pageSize: 2 });
    assert.equal(
      await codeOf(
        admin.listTokens({
          parent: `tenants/${tenant}`,
          subject: "odd",
          pageToken: first.nextPageToken,
        }),
      ),
      Code.InvalidArgument,
    );
    assert.equal(
      await codeOf(admin.listTokens({ parent: `tenants/${tenant}`, pageToken: "garbage" })),
      Code.InvalidArgument,
    );
    assert.equal(
      await codeOf(admin.listTokens({ parent: `tenants/${tenant}`, pageSize: -1 })),
      Code.InvalidArgument,
    );
  });

  test("a key scoped to tenant A cannot touch tenant B's tokens", async () => {
    const a = freshTenant();
    const b = freshTenant();
    const adminA = client(`admin:${a}`);
    const adminB = client(`admin:${b}`);
    const { token } = await adminB.createToken({ parent: `tenants/${b}`, token: {} });
    assert.ok(token);

    const denied = [
      adminA.getToken({ name: token.name }),
      adminA.revokeToken({ name: token.name }),
      adminA.listTokens({ parent: `tenants/${b}` }),
      adminA.createToken({ parent: `tenants/${b}`, token: {} }),
      adminA.updateToken({
        token: { name: token.name, displayName: "x" },
        updateMask: { paths: ["display_name"] },
      }),
    ];
    for (const call of denied) assert.equal(await codeOf(call), Code.PermissionDenied);

    // A's key on a name that puts B's token id under tenant A finds nothing.
    const [, , , id] = token.name.split("/");
    const underA = `tenants/${a}/tokens/${id}`;
    assert.equal(await codeOf(adminA.getToken({ name: underA })), Code.NotFound);
    assert.equal(await codeOf(adminA.revokeToken({ name: underA })), Code.NotFound);
    assert.equal(
      await codeOf(
        adminA.updateToken({ token: { name: underA }, updateMask: { paths: ["subject"] } }),
      ),
      Code.NotFound,
    );
    assert.deepEqual(
      (await adminA.listTokens({ parent: `tenants/${a}`, showRevoked: true })).tokens,
      [],
    );
    // B's token is untouched.
    const still = await adminB.getToken({ name: token.name });
    assert.equal(still.token?.state, TokenState.ACTIVE);
    assert.equal(still.token?.etag, "v1");
  });

  test("roles: readers read, only writers change", async () => {
    const tenant = freshTenant();
    const reader = client(`reader:${tenant}`);
    const { token } = await client(`admin:${tenant}`).createToken({
      parent: `tenants/${tenant}`,
      token: {},
    });
    assert.ok(token);
    assert.equal((await reader.getToken({ name: token.name })).token?.name, token.name);
    assert.equal((await reader.listTokens({ parent: `tenants/${tenant}` })).tokens.length, 1);
    assert.equal(
      await codeOf(reader.createToken({ parent: `tenants/${tenant}`, token: {} })),
      Code.PermissionDenied,
    );
    assert.equal(await codeOf(reader.revokeToken({ name: token.name })), Code.PermissionDenied);
    assert.equal(await codeOf(client().getToken({ name: token.name })), Code.Unauthenticated);
    assert.equal(
      await codeOf(client("bogus").getToken({ name: token.name })),
      Code.Unauthenticated,
    );
    // The gateway identity verifies tokens; it does not administer them.
    assert.equal(
      await codeOf(client("gateway").getToken({ name: token.name })),
      Code.PermissionDenied,
    );
  });

  test("VerifyToken: malformed and unknown secrets, and who may call it", async () => {
    const gateway = client("gateway");
    const { secret } = generateTokenSecret();
    const unknown = await gateway.verifyToken({ secret });
    assert.equal(unknown.failure, VerifyFailure.NOT_FOUND);
    assert.equal(unknown.cacheTtl && durationMs(unknown.cacheTtl), 5_000);
    for (const bad of [
      "",
      "lk_",
      `${secret}x`,
      `${secret.slice(0, -1)}${secret.at(-1) === "0" ? "1" : "0"}`,
    ]) {
      const res = await gateway.verifyToken({ secret: bad });
      assert.equal(res.failure, VerifyFailure.MALFORMED);
      assert.equal(res.claims, undefined);
    }
    assert.equal(await codeOf(client().verifyToken({ secret })), Code.Unauthenticated);
    // An admin key on every tenant may call it to debug the data plane...
    const debug = await client("admin:*").verifyToken({ secret });
    assert.equal(debug.failure, VerifyFailure.NOT_FOUND);
    // ...a tenant-scoped admin key is not the gateway.
    assert.equal(await codeOf(client("admin:acme").verifyToken({ secret })), Code.PermissionDenied);
  });

  test("UpdateToken: masks, validation, revoked tokens and etags", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const gateway = client("gateway");
    const { token, secret } = await admin.createToken({
      parent: `tenants/${tenant}`,
      token: {
        displayName: "before",
        subject: "s1",
        attributes: { a: "1" },
        allowedUpstreams: ["x"],
      },
    });
    assert.ok(token);

    const updated = await admin.updateToken({
      token: {
        name: token.name,
        displayName: "ignored: not in the mask",
        subject: "s2",
        attributes: { b: "2" },
        allowedUpstreams: [],
        etag: token.etag,
      },
      updateMask: { paths: ["subject", "attributes", "allowed_upstreams"] },
    });
    assert.equal(updated.token?.displayName, "before");
    assert.equal(updated.token?.subject, "s2");
    assert.deepEqual(updated.token?.attributes, { b: "2" });
    assert.deepEqual(updated.token?.allowedUpstreams, []);
    assert.equal(updated.token?.etag, "v2");
    const claims = (await gateway.verifyToken({ secret })).claims;
    assert.equal(claims?.subject, "s2");
    assert.deepEqual(claims?.attributes, { b: "2" });

    const invalid = [
      { token: { name: token.name }, updateMask: { paths: [] } },
      { token: { name: token.name }, updateMask: { paths: ["state"] } },
      { token: { name: token.name }, updateMask: { paths: ["rate_limits"] } },
      {
        token: { name: token.name, displayName: "x".repeat(201) },
        updateMask: { paths: ["display_name"] },
      },
      {
        token: { name: token.name, attributes: { "Bad Key": "v" } },
        updateMask: { paths: ["attributes"] },
      },
      {
        token: { name: token.name, expireTime: timestampFromDate(new Date(now.getTime() - 1000)) },
        updateMask: { paths: ["expire_time"] },
      },
      { token: { name: "tokens/nope" }, updateMask: { paths: ["subject"] } },
    ];
    for (const req of invalid)
      assert.equal(await codeOf(admin.updateToken(req)), Code.InvalidArgument);

    const stale = admin.updateToken({
      token: { name: token.name, subject: "s3", etag: token.etag },
      updateMask: { paths: ["subject"] },
    });
    assert.equal(await codeOf(stale), Code.Aborted);

    await admin.revokeToken({ name: token.name });
    const onRevoked = admin.updateToken({
      token: { name: token.name, subject: "s3" },
      updateMask: { paths: ["subject"] },
    });
    assert.equal(await codeOf(onRevoked), Code.FailedPrecondition);
  });

  test("CreateToken validates its input", async () => {
    const tenant = freshTenant();
    const admin = client(`admin:${tenant}`);
    const parent = `tenants/${tenant}`;
    const past = timestampFromDate(new Date(now.getTime() - 1));
    const invalid = [
      { parent: "acme", token: {} },
      { parent, token: { displayName: "x".repeat(201) } },
      { parent, token: { attributes: { UPPER: "v" } } },
      { parent, token: { allowedUpstreams: ["not a slug"] } },
      { parent, token: { expireTime: past } },
      { parent, token: {}, ttl: durationFromMs(-1000) },
      {
        parent,
        token: { expireTime: timestampFromDate(new Date(now.getTime() + 1000)) },
        ttl: durationFromMs(1000),
      },
      { parent, token: {}, requestId: "r".repeat(101) },
      { parent, token: { rateLimits: [{ limit: 10n }] } },
    ];
    for (const req of invalid)
      assert.equal(await codeOf(admin.createToken(req)), Code.InvalidArgument);
    assert.deepEqual((await admin.listTokens({ parent })).tokens, []);
  });

  test("RotateToken is not implemented yet", async () => {
    const tenant = freshTenant();
    const call = client(`admin:${tenant}`).rotateToken({ name: `tenants/${tenant}/tokens/tok_x` });
    assert.equal(await codeOf(call), Code.Unimplemented);
  });
});
