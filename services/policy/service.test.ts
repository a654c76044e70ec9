/**
 * PolicyService through the generated client over the in-process Connect transport (the
 * same interceptors as the network server: auth, error mapping), on a real PostgreSQL.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
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
  AuditMode,
  Effect,
  type EvaluationInput,
  EvaluationInputSchema,
  PolicyService,
  RuleMode,
  RuleSchema,
  UpstreamSchema,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import { createLogger } from "../../libs/log/index.ts";
import { createInProcessTransport } from "../../libs/rpc/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { createPolicyComponent } from "./component.ts";
import { testEngines } from "./test-databases.ts";

const log = createLogger({ level: "silent" });

/**
 * Test credentials: `admin:<tenant>` (role admin on one tenant), `reader:<tenant>`,
 * `root` (admin on every tenant), `gateway` (the gateway identity).
 */
const authenticate: Authenticator = async (header) => {
  const credential = header?.replace(/^Bearer /, "") ?? "";
  if (credential === "gateway") return { kind: "gateway" };
  if (credential === "root")
    return { kind: "admin", keyId: "key_root", role: "admin", tenants: ["*"] };
  const [role, tenant] = credential.split(":");
  if ((role === "admin" || role === "reader") && tenant) {
    return {
      kind: "admin",
      keyId: `key_${role}_${tenant}`,
      role,
      tenants: [tenant],
    } satisfies Principal;
  }
  return undefined;
};

let tenantCounter = 0;
/** A tenant of its own per test, so tests sharing one database never see each other. */
const freshTenant = () => `t${process.pid}-${++tenantCounter}`;

/** Asserts the call fails with `code` and a message matching `message`. */
async function rejects(
  call: Promise<unknown>,
  code: Code,
  message?: RegExp,
): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], e.rawMessage);
    if (message) assert.match(e.rawMessage, message);
    return e;
  }
  assert.fail(`expected ${Code[code]}`);
}

const upstreamInput = (over: MessageInitShape<typeof UpstreamSchema> = {}) =>
  create(UpstreamSchema, { origin: "https://api.stripe.com", ...over });

const rule = (r: MessageInitShape<typeof RuleSchema> & { id: string }) =>
  create(RuleSchema, { effect: Effect.ALLOW, ...r });

const evalInput = (
  over: { upstream?: string; method?: string; path?: string; team?: string } = {},
) =>
  create(EvaluationInputSchema, {
    token: {
      id: "tok_1",
      subject: "svc",
      attributes: over.team === undefined ? {} : { team: over.team },
    },
    request: {
      method: over.method ?? "GET",
      path: over.path ?? "/v1/charges",
      clientAddress: "10.0.0.1",
      headers: {},
      time: timestampFromDate(new Date("2030-01-01T12:00:00Z")),
    },
    upstream: over.upstream ?? "stripe",
  });

for (const engine of await testEngines()) {
  describe(`PolicyService (in-process Connect, ${engine.name})`, { skip: engine.skip }, () => {
    let db: Db;
    let closeDb: () => Promise<void>;
    let bus: Bus;
    let component: Component;
    const clientAs = (credential?: string) =>
      createClient(
        PolicyService,
        createInProcessTransport({ routes: component.routes, authenticate, log, credential }),
      );

    before(async () => {
      ({ db, close: closeDb } = await engine.open());
      bus = await openBus();
      component = createPolicyComponent({ db, bus, log });
      await component.start();
    });
    after(async () => {
      await component?.stop();
      await bus?.close();
      await closeDb?.();
    });

    /** Change events written to the outbox for a tenant, oldest first. */
    async function outboxEvents(
      tenant: string,
    ): Promise<Array<{ subject: string; event: ChangeEvent }>> {
      const { rows } = await db.query<{ subject: string; payload: Uint8Array }>(
        "SELECT subject, payload FROM policy.outbox ORDER BY seq",
      );
      return rows
        .map((r) => ({ subject: r.subject, event: fromBinary(ChangeEventSchema, r.payload) }))
        .filter((r) => r.event.tenant === tenant);
    }

    describe("upstreams", () => {
      test("create applies defaults and normalizes; get, list, update, delete", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const { upstream } = await c.createUpstream({
          parent: `tenants/${tenant}`,
          upstreamId: "stripe",
          upstream: upstreamInput({
            origin: "HTTPS://API.Stripe.com:443/",
            basePath: "/v1/",
            displayName: "Stripe",
          }),
        });
        assert.ok(upstream);
        assert.equal(upstream.name, `tenants/${tenant}/upstreams/stripe`);
        assert.equal(upstream.origin, "https://api.stripe.com");
        assert.equal(upstream.basePath, "/v1");
        assert.equal(upstream.displayName, "Stripe");
        assert.equal(durationMs(upstream.requestTimeout ?? durationFromMs(0)), 30_000);
        assert.equal(upstream.maxRequestBodyBytes, 10n * 1024n * 1024n);
        assert.equal(upstream.auditMode, AuditMode.ASYNC);
        assert.equal(upstream.forwardCookies, false);
        assert.ok(upstream.createTime && upstream.updateTime);
        assert.notEqual(upstream.etag, "");

        const got = await c.getUpstream({ name: upstream.name });
        assert.deepEqual(got.upstream, upstream);

        for (const slug of ["openai", "github"]) {
          await c.createUpstream({
            parent: `tenants/${tenant}`,
            upstreamId: slug,
            upstream: upstreamInput(),
          });
        }
        const page1 = await c.listUpstreams({ parent: `tenants/${tenant}`, pageSize: 2 });
        assert.deepEqual(
          page1.upstreams.map((u) => u.name.split("/").at(-1)),
          ["github", "openai"],
        );
        assert.notEqual(page1.nextPageToken, "");
        const page2 = await c.listUpstreams({
          parent: `tenants/${tenant}`,
          pageSize: 2,
          pageToken: page1.nextPageToken,
        });
        assert.deepEqual(
          page2.upstreams.map((u) => u.name.split("/").at(-1)),
          ["stripe"],
        );
        assert.equal(page2.nextPageToken, "");

        const updated = await c.updateUpstream({
          upstream: upstreamInput({
            name: upstream.name,
            origin: "https://eu.stripe.com",
            requestTimeout: durationFromMs(5000),
            displayName: "ignored: not in the mask",
            etag: upstream.etag,
          }),
          updateMask: { paths: ["origin", "request_timeout"] },
        });
        assert.equal(updated.upstream?.origin, "https://eu.stripe.com");
        assert.equal(durationMs(updated.upstream?.requestTimeout ?? durationFromMs(0)), 5000);
        assert.equal(updated.upstream?.displayName, "Stripe");
        assert.equal(updated.upstream?.basePath, "/v1");
        assert.notEqual(updated.upstream?.etag, upstream.etag);

        // A stale etag is refused; an empty mask too.
        await rejects(
          c.updateUpstream({
            upstream: upstreamInput({ name: upstream.name, etag: upstream.etag }),
            updateMask: { paths: ["origin"] },
          }),
          Code.Aborted,
          /etag/,
        );
        await rejects(
          c.updateUpstream({
            upstream: upstreamInput({ name: upstream.name }),
            updateMask: { paths: [] },
          }),
          Code.InvalidArgument,
          /update_mask/,
        );
        await rejects(
          c.updateUpstream({
            upstream: upstreamInput({ name: upstream.name, origin: "https://x.example/v1" }),
            updateMask: { paths: ["origin"] },
          }),
          Code.InvalidArgument,
          /path/,
        );

        await c.deleteUpstream({ name: upstream.name });
        await rejects(c.getUpstream({ name: upstream.name }), Code.NotFound);
        await rejects(c.deleteUpstream({ name: upstream.name }), Code.NotFound);
        await rejects(
          c.updateUpstream({
            upstream: upstreamInput({ name: upstream.name }),
            updateMask: { paths: ["origin"] },
          }),
          Code.NotFound,
        );
      });

      test("validation errors name the problem", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const parent = `tenants/${tenant}`;
        const createWith = (upstreamId: string, over: MessageInitShape<typeof UpstreamSchema>) =>
          c.createUpstream({ parent, upstreamId, upstream: upstreamInput(over) });
        await rejects(
          createWith("a", { origin: "https://api.stripe.com/v1/charges" }),
          Code.InvalidArgument,
          /must not have a path/,
        );
        await rejects(
          createWith("a", { origin: "https://api.stripe.com?key=x" }),
          Code.InvalidArgument,
          /query/,
        );
        const userinfo = await rejects(
          createWith("a", { origin: "https://admin:hunter2@api.example.com" }),
          Code.InvalidArgument,
          /user info/,
        );
        assert.doesNotMatch(userinfo.rawMessage, /hunter2/);
        await rejects(createWith("a", { origin: "" }), Code.InvalidArgument, /origin is required/);
        for (const slug of ["", "Stripe", "-x", "a_b", "x".repeat(64)]) {
          await rejects(createWith(slug, {}), Code.InvalidArgument, /upstream_id/);
        }
        await rejects(createWith("a", { basePath: "/v1/../admin" }), Code.InvalidArgument, /\.\./);
        await rejects(
          createWith("a", { basePath: "/v1%2Fadmin" }),
          Code.InvalidArgument,
          /encoded slashes/,
        );
        await rejects(
          createWith("a", { requestTimeout: durationFromMs(600_000) }),
          Code.InvalidArgument,
          /request_timeout/,
        );
        await rejects(
          createWith("a", { maxRequestBodyBytes: 2n ** 31n }),
          Code.InvalidArgument,
          /max_request_body_bytes/,
        );
        await rejects(
          createWith("a", { auditMode: AuditMode.SYNC }),
          Code.FailedPrecondition,
          /^sync audit mode is not available yet$/,
        );
        await rejects(
          createWith("a", { credential: "tenants/someone-else/credentials/cred_1" }),
          Code.InvalidArgument,
          new RegExp(`must belong to tenant ${tenant}`),
        );
        // Nothing was written by any of the refused calls.
        assert.deepEqual((await c.listUpstreams({ parent })).upstreams, []);
        assert.deepEqual(await outboxEvents(tenant), []);
      });

      test("create is idempotent by request_id; a taken slug is AlreadyExists", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const parent = `tenants/${tenant}`;
        const first = await c.createUpstream({
          parent,
          upstreamId: "stripe",
          upstream: upstreamInput(),
          requestId: "req-1",
        });
        const retry = await c.createUpstream({
          parent,
          upstreamId: "stripe",
          upstream: upstreamInput(),
          requestId: "req-1",
        });
        assert.deepEqual(retry.upstream, first.upstream);
        await rejects(
          c.createUpstream({ parent, upstreamId: "stripe", upstream: upstreamInput() }),
          Code.AlreadyExists,
        );
        await rejects(
          c.createUpstream({
            parent,
            upstreamId: "stripe",
            upstream: upstreamInput(),
            requestId: "req-2",
          }),
          Code.AlreadyExists,
        );
        assert.equal((await outboxEvents(tenant)).length, 1);
      });

      test("readers read but do not write; no credential is Unauthenticated", async () => {
        const tenant = freshTenant();
        await clientAs(`admin:${tenant}`).createUpstream({
          parent: `tenants/${tenant}`,
          upstreamId: "s",
          upstream: upstreamInput(),
        });
        const reader = clientAs(`reader:${tenant}`);
        assert.equal(
          (await reader.listUpstreams({ parent: `tenants/${tenant}` })).upstreams.length,
          1,
        );
        await rejects(
          reader.createUpstream({
            parent: `tenants/${tenant}`,
            upstreamId: "x",
            upstream: upstreamInput(),
          }),
          Code.PermissionDenied,
        );
        await rejects(
          reader.putPolicySet({ parent: `tenants/${tenant}`, rules: [] }),
          Code.PermissionDenied,
        );
        await rejects(
          clientAs().getUpstream({ name: `tenants/${tenant}/upstreams/s` }),
          Code.Unauthenticated,
        );
        await rejects(
          clientAs("nobody").getUpstream({ name: `tenants/${tenant}/upstreams/s` }),
          Code.Unauthenticated,
        );
      });
    });

    describe("policy sets", () => {
      test("versions: empty at 0, then 1, 2, ...; every version readable; newest first", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const name = `tenants/${tenant}/policySet`;
        const empty = await c.getPolicySet({ name });
        assert.equal(empty.policySet?.name, name);
        assert.equal(empty.policySet?.version, 0n);
        assert.deepEqual(empty.policySet?.rules, []);

        const v1 = await c.putPolicySet({
          parent: `tenants/${tenant}`,
          rules: [rule({ id: "a" })],
        });
        assert.equal(v1.policySet?.version, 1n);
        assert.equal(v1.policySet?.author, `key_admin_${tenant}`);
        assert.ok(v1.policySet?.createTime);
        const rules2 = [
          rule({
            id: "b",
            upstreams: ["stripe"],
            methods: ["GET"],
            paths: ["/v1/**"],
            condition: 'token.subject == "svc"',
          }),
          rule({
            id: "c",
            effect: Effect.DENY,
            mode: RuleMode.DRY_RUN,
            description: "watch deletes",
            methods: ["DELETE"],
          }),
        ];
        const v2 = await c.putPolicySet({
          parent: `tenants/${tenant}`,
          rules: rules2,
          expectedVersion: 1n,
        });
        assert.equal(v2.policySet?.version, 2n);
        assert.deepEqual(v2.policySet?.rules, rules2);

        assert.equal((await c.getPolicySet({ name })).policySet?.version, 2n);
        assert.deepEqual((await c.getPolicySet({ name })).policySet?.rules, rules2);
        assert.deepEqual((await c.getPolicySet({ name, version: 1n })).policySet?.rules, [
          rule({ id: "a" }),
        ]);
        await rejects(c.getPolicySet({ name, version: 3n }), Code.NotFound);

        await c.putPolicySet({ parent: `tenants/${tenant}`, rules: [] });
        const page1 = await c.listPolicySetVersions({ name, pageSize: 2 });
        assert.deepEqual(
          page1.policySets.map((p) => p.version),
          [3n, 2n],
        );
        const page2 = await c.listPolicySetVersions({
          name,
          pageSize: 2,
          pageToken: page1.nextPageToken,
        });
        assert.deepEqual(
          page2.policySets.map((p) => p.version),
          [1n],
        );
        assert.equal(page2.nextPageToken, "");
        await rejects(
          c.getPolicySet({ name: `tenants/${tenant}/policySets` }),
          Code.InvalidArgument,
        );
      });

      test("expected_version must match the current version", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        await c.putPolicySet({ parent: `tenants/${tenant}`, rules: [] });
        await rejects(
          c.putPolicySet({ parent: `tenants/${tenant}`, rules: [], expectedVersion: 5n }),
          Code.Aborted,
          /version 1, not the expected 5/,
        );
        assert.equal(
          (await c.putPolicySet({ parent: `tenants/${tenant}`, rules: [], expectedVersion: 1n }))
            .policySet?.version,
          2n,
        );
      });

      test("concurrent writers get distinct versions", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            c.putPolicySet({ parent: `tenants/${tenant}`, rules: [rule({ id: `r${i}` })] }),
          ),
        );
        assert.deepEqual(results.map((r) => r.policySet?.version).sort(), [1n, 2n, 3n, 4n, 5n]);
      });

      test("invalid rules are refused with every problem, CEL type errors included", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const err = await rejects(
          c.putPolicySet({
            parent: `tenants/${tenant}`,
            rules: [
              rule({ id: "typed", condition: "request.method == 1" }),
              rule({ id: "not-bool", condition: "request.path" }),
              rule({ id: "typo", condition: 'request.methd == "GET"' }),
              rule({ id: "syntax", condition: "request.method ==" }),
              rule({ id: "lower", methods: ["get"] }),
              rule({ id: "glob", paths: ["/v1/a**"] }),
              rule({ id: "no-effect", effect: Effect.UNSPECIFIED }),
              rule({ id: "typed" }),
            ],
          }),
          Code.InvalidArgument,
        );
        const m = err.rawMessage;
        assert.match(m, /^invalid policy set \(8 problems\)/);
        assert.match(
          m,
          /rule 'typed': condition type error at column 16: no matching overload for '==' applied to \(string, int\)/,
        );
        assert.match(
          m,
          /rule 'not-bool': condition must evaluate to bool, but evaluates to string/,
        );
        assert.match(
          m,
          /rule 'typo': condition type error at column 8: request has no field 'methd'/,
        );
        assert.match(m, /rule 'syntax': condition syntax error at 1:\d+/);
        assert.match(
          m,
          /rule 'lower': method "get" is not a known upper-case HTTP method \(write GET\)/,
        );
        assert.match(m, /rule 'glob': path "\/v1\/a\*\*" may use \*\* only as a whole segment/);
        assert.match(m, /rule 'no-effect': effect must be EFFECT_ALLOW or EFFECT_DENY/);
        assert.match(m, /rule 'typed': id is used by more than one rule/);
        assert.equal(
          (await c.getPolicySet({ name: `tenants/${tenant}/policySet` })).policySet?.version,
          0n,
        );
      });
    });

    describe("evaluation", () => {
      test("decisions: allow, deny wins, default deny, dry-run, unknown upstream", async () => {
        const tenant = freshTenant();
        const admin = clientAs(`admin:${tenant}`);
        const parent = `tenants/${tenant}`;
        await admin.createUpstream({ parent, upstreamId: "stripe", upstream: upstreamInput() });
        await admin.createUpstream({
          parent,
          upstreamId: "openai",
          upstream: upstreamInput({ origin: "https://api.openai.com" }),
        });
        const gw = clientAs("gateway");

        // No policy yet: everything is denied, at version 0.
        const none = await gw.evaluate({ parent, input: evalInput() });
        assert.equal(none.decision?.allowed, false);
        assert.equal(none.decision?.policyVersion, 0n);

        await admin.putPolicySet({
          parent,
          rules: [
            rule({
              id: "payments-read",
              upstreams: ["stripe"],
              paths: ["/v1/**"],
              condition:
                'token.attributes["team"] == "payments" && request.method in ["GET","HEAD"]',
            }),
            rule({ id: "no-refunds", effect: Effect.DENY, paths: ["/v1/refunds/**"] }),
            rule({
              id: "would-block-openai",
              effect: Effect.DENY,
              mode: RuleMode.DRY_RUN,
              upstreams: ["openai"],
            }),
            rule({
              id: "openai",
              upstreams: ["openai"],
              condition: 'upstream.origin == "https://api.openai.com"',
            }),
          ],
        });

        const allow = await gw.evaluate({ parent, input: evalInput({ team: "payments" }) });
        assert.equal(allow.decision?.allowed, true);
        assert.deepEqual(allow.decision?.ruleIds, ["payments-read"]);
        assert.equal(allow.decision?.policyVersion, 1n);
        assert.equal(allow.decision?.reason, "allowed by rule 'payments-read'");

        const wrongTeam = await gw.evaluate({ parent, input: evalInput({ team: "growth" }) });
        assert.equal(wrongTeam.decision?.allowed, false);
        assert.equal(wrongTeam.decision?.reason, "no rule matched");

        const post = await gw.evaluate({
          parent,
          input: evalInput({ team: "payments", method: "POST" }),
        });
        assert.equal(post.decision?.allowed, false);

        const refund = await gw.evaluate({
          parent,
          input: evalInput({ team: "payments", path: "/v1/refunds/re_1" }),
        });
        assert.equal(refund.decision?.allowed, false);
        assert.deepEqual(refund.decision?.ruleIds, ["no-refunds"]);

        const openai = await gw.evaluate({
          parent,
          input: evalInput({ upstream: "openai", path: "/v1/chat" }),
        });
        assert.equal(openai.decision?.allowed, true);
        assert.deepEqual(openai.decision?.ruleIds, ["openai"]);
        assert.deepEqual(openai.decision?.dryRunRuleIds, ["would-block-openai"]);

        // An upstream of another tenant, or of nobody, gets the same answer.
        const other = freshTenant();
        await clientAs(`admin:${other}`).createUpstream({
          parent: `tenants/${other}`,
          upstreamId: "github",
          upstream: upstreamInput(),
        });
        for (const slug of ["github", "nope", ""]) {
          const unknown = await gw.evaluate({
            parent,
            input: evalInput({ upstream: slug, team: "payments" }),
          });
          assert.equal(unknown.decision?.allowed, false);
          assert.equal(unknown.decision?.reason, "unknown upstream");
          assert.deepEqual(unknown.decision?.ruleIds, []);
        }

        // A new version takes effect on the next evaluation.
        await admin.putPolicySet({ parent, rules: [rule({ id: "all" })] });
        const v2 = await gw.evaluate({ parent, input: evalInput({ team: "growth" }) });
        assert.equal(v2.decision?.allowed, true);
        assert.equal(v2.decision?.policyVersion, 2n);

        await rejects(
          gw.evaluate({ parent, input: evalInput({ path: "v1/x" }) }),
          Code.InvalidArgument,
          /input.request.path/,
        );
        await rejects(gw.evaluate({ parent }), Code.InvalidArgument, /input is required/);
      });

      test("batch: one decision per input, in order, at most 100", async () => {
        const tenant = freshTenant();
        const parent = `tenants/${tenant}`;
        const admin = clientAs(`admin:${tenant}`);
        await admin.createUpstream({ parent, upstreamId: "stripe", upstream: upstreamInput() });
        await admin.putPolicySet({ parent, rules: [rule({ id: "get", methods: ["GET"] })] });
        const inputs: EvaluationInput[] = [
          evalInput({ method: "GET" }),
          evalInput({ method: "POST" }),
          evalInput({ upstream: "nope" }),
          evalInput({ method: "GET", path: "/x" }),
        ];
        const { decisions } = await clientAs("gateway").batchEvaluate({ parent, inputs });
        assert.deepEqual(
          decisions.map((d) => d.allowed),
          [true, false, false, true],
        );
        assert.equal(decisions[2]?.reason, "unknown upstream");
        await rejects(
          clientAs("gateway").batchEvaluate({
            parent,
            inputs: Array.from({ length: 101 }, () => evalInput()),
          }),
          Code.InvalidArgument,
          /at most 100/,
        );
        await rejects(
          clientAs("gateway").batchEvaluate({
            parent,
            inputs: [evalInput(), evalInput({ path: "" })],
          }),
          Code.InvalidArgument,
          /inputs\[1\]\.request\.path/,
        );
      });

      test("who may evaluate: the gateway, the tenant's admins and readers; not other tenants", async () => {
        const tenant = freshTenant();
        const parent = `tenants/${tenant}`;
        await clientAs(`admin:${tenant}`).createUpstream({
          parent,
          upstreamId: "stripe",
          upstream: upstreamInput(),
        });
        for (const who of ["gateway", "root", `admin:${tenant}`, `reader:${tenant}`]) {
          const res = await clientAs(who).evaluate({ parent, input: evalInput() });
          assert.equal(res.decision?.allowed, false, who);
        }
        await rejects(
          clientAs("admin:elsewhere").evaluate({ parent, input: evalInput() }),
          Code.PermissionDenied,
        );
        await rejects(clientAs().evaluate({ parent, input: evalInput() }), Code.Unauthenticated);
      });
    });

    describe("bundle", () => {
      test("holds every upstream, the current rules and a ttl; gateway (or root) only", async () => {
        const tenant = freshTenant();
        const parent = `tenants/${tenant}`;
        const admin = clientAs(`admin:${tenant}`);
        await admin.createUpstream({
          parent,
          upstreamId: "stripe",
          upstream: upstreamInput({ basePath: "/v1" }),
        });
        await admin.createUpstream({
          parent,
          upstreamId: "openai",
          upstream: upstreamInput({ origin: "https://api.openai.com" }),
        });
        const rules = [rule({ id: "a", upstreams: ["stripe"] })];
        await admin.putPolicySet({ parent, rules });
        await admin.putPolicySet({ parent, rules });

        const bundle = await clientAs("gateway").getBundle({ parent });
        assert.deepEqual(
          bundle.upstreams.map((u) => [u.name, u.origin, u.basePath]),
          [
            [`tenants/${tenant}/upstreams/openai`, "https://api.openai.com", ""],
            [`tenants/${tenant}/upstreams/stripe`, "https://api.stripe.com", "/v1"],
          ],
        );
        assert.equal(bundle.policySet?.version, 2n);
        assert.deepEqual(bundle.policySet?.rules, rules);
        assert.equal(durationMs(bundle.cacheTtl ?? durationFromMs(0)), 30_000);

        const emptyTenant = freshTenant();
        const empty = await clientAs("root").getBundle({ parent: `tenants/${emptyTenant}` });
        assert.deepEqual(empty.upstreams, []);
        assert.equal(empty.policySet?.version, 0n);

        await rejects(clientAs(`admin:${tenant}`).getBundle({ parent }), Code.PermissionDenied);
        await rejects(clientAs(`reader:${tenant}`).getBundle({ parent }), Code.PermissionDenied);
      });
    });

    test("cross-tenant isolation: a key of tenant A cannot read or change tenant B", async () => {
      const a = freshTenant();
      const b = freshTenant();
      await clientAs(`admin:${b}`).createUpstream({
        parent: `tenants/${b}`,
        upstreamId: "stripe",
        upstream: upstreamInput(),
      });
      await clientAs(`admin:${b}`).putPolicySet({
        parent: `tenants/${b}`,
        rules: [rule({ id: "secret-rule" })],
      });
      const keyA = clientAs(`admin:${a}`);
      const denied = [
        keyA.getUpstream({ name: `tenants/${b}/upstreams/stripe` }),
        keyA.listUpstreams({ parent: `tenants/${b}` }),
        keyA.createUpstream({ parent: `tenants/${b}`, upstreamId: "x", upstream: upstreamInput() }),
        keyA.updateUpstream({
          upstream: upstreamInput({ name: `tenants/${b}/upstreams/stripe` }),
          updateMask: { paths: ["origin"] },
        }),
        keyA.deleteUpstream({ name: `tenants/${b}/upstreams/stripe` }),
        keyA.getPolicySet({ name: `tenants/${b}/policySet` }),
        keyA.listPolicySetVersions({ name: `tenants/${b}/policySet` }),
        keyA.putPolicySet({ parent: `tenants/${b}`, rules: [] }),
        keyA.evaluate({ parent: `tenants/${b}`, input: evalInput() }),
        keyA.getBundle({ parent: `tenants/${b}` }),
      ];
      for (const call of denied) {
        const err = await rejects(call, Code.PermissionDenied);
        assert.doesNotMatch(err.rawMessage, /secret-rule|stripe\.com/);
      }
      // The same slug in tenant A is a different upstream; B's is untouched.
      await keyA.createUpstream({
        parent: `tenants/${a}`,
        upstreamId: "stripe",
        upstream: upstreamInput({ origin: "https://a.example" }),
      });
      const bStripe = await clientAs(`admin:${b}`).getUpstream({
        name: `tenants/${b}/upstreams/stripe`,
      });
      assert.equal(bStripe.upstream?.origin, "https://api.stripe.com");
      assert.equal(
        (await keyA.getPolicySet({ name: `tenants/${a}/policySet` })).policySet?.version,
        0n,
      );
    });

    describe("change events", () => {
      test("every write enqueues one change event in its transaction", async () => {
        const tenant = freshTenant();
        const c = clientAs(`admin:${tenant}`);
        const parent = `tenants/${tenant}`;
        const name = `tenants/${tenant}/upstreams/stripe`;
        await c.createUpstream({ parent, upstreamId: "stripe", upstream: upstreamInput() });
        await c.updateUpstream({
          upstream: upstreamInput({ name, forwardCookies: true }),
          updateMask: { paths: ["forward_cookies"] },
        });
        await c.putPolicySet({ parent, rules: [rule({ id: "a" })] });
        await c.putPolicySet({ parent, rules: [] });
        await c.deleteUpstream({ name });
        // Refused writes enqueue nothing.
        await rejects(
          c.putPolicySet({ parent, rules: [rule({ id: "x", condition: "1" })] }),
          Code.InvalidArgument,
        );

        const events = await outboxEvents(tenant);
        assert.deepEqual(
          events.map(({ subject, event }) => [
            subject,
            event.resource,
            ResourceType[event.resourceType],
            ChangeAction[event.action],
            event.version,
            event.actor,
          ]),
          [
            [
              `latchkey.change.${tenant}.upstream`,
              name,
              "UPSTREAM",
              "CREATED",
              1n,
              `key_admin_${tenant}`,
            ],
            [
              `latchkey.change.${tenant}.upstream`,
              name,
              "UPSTREAM",
              "UPDATED",
              2n,
              `key_admin_${tenant}`,
            ],
            [
              `latchkey.change.${tenant}.policy`,
              `${parent}/policySet`,
              "POLICY_SET",
              "CREATED",
              1n,
              `key_admin_${tenant}`,
            ],
            [
              `latchkey.change.${tenant}.policy`,
              `${parent}/policySet`,
              "POLICY_SET",
              "UPDATED",
              2n,
              `key_admin_${tenant}`,
            ],
            [
              `latchkey.change.${tenant}.upstream`,
              name,
              "UPSTREAM",
              "DELETED",
              2n,
              `key_admin_${tenant}`,
            ],
          ],
        );
      });

      test("the relay publishes them on the bus", { timeout: 20_000 }, async () => {
        const tenant = freshTenant();
        const received = new Promise<BusMessage>((resolve) => {
          const sub = bus.subscribe(`latchkey.change.${tenant}.>`, (message) => {
            void sub.stop();
            resolve(message);
          });
        });
        await clientAs(`admin:${tenant}`).putPolicySet({ parent: `tenants/${tenant}`, rules: [] });
        const message = await received;
        assert.equal(message.subject, `latchkey.change.${tenant}.policy`);
        const event = fromBinary(ChangeEventSchema, message.data);
        assert.equal(event.resourceType, ResourceType.POLICY_SET);
        assert.equal(event.version, 1n);
      });
    });
  });
}
