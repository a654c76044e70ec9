import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Effect, PolicySetSchema, RuleMode } from "../gen/latchkey/policy/v1/policy_pb.js";
import { compilePolicy, PolicyCompileError } from "./compile-policy.ts";
import { rule } from "./rule-fixture.ts";
import type { EvaluationInput, PolicyRule } from "./types.ts";

const input = (over: {
  method?: string;
  path?: string;
  slug?: string;
  attributes?: Record<string, string>;
  headers?: Record<string, string>;
  time?: Date;
}): EvaluationInput => ({
  token: {
    id: "tok_1",
    subject: "svc-billing",
    attributes: over.attributes ?? { team: "payments" },
  },
  request: {
    method: over.method ?? "GET",
    path: over.path ?? "/v1/charges/ch_1",
    clientAddress: "10.0.0.7",
    headers: over.headers ?? {},
    time: over.time ?? new Date("2025-03-04T10:00:00Z"),
  },
  upstream: { slug: over.slug ?? "stripe", origin: "https://api.stripe.com" },
});

const decide = (rules: PolicyRule[], i: EvaluationInput) =>
  compilePolicy({ version: 7, rules }).evaluate(i);

describe("compilePolicy().evaluate", () => {
  test("no rules: denied with the reason 'no rule matched'", () => {
    const d = compilePolicy({ version: 0, rules: [] }).evaluate(input({}));
    assert.equal(d.allowed, false);
    assert.deepEqual(d.ruleIds, []);
    assert.match(d.reason, /^no rule matched/);
    assert.equal(d.policyVersion, 0);
  });

  test("a matching allow allows and is reported", () => {
    const d = decide([rule({ id: "a" }), rule({ id: "b", methods: ["POST"] })], input({}));
    assert.deepEqual(d, {
      allowed: true,
      ruleIds: ["a"],
      dryRunRuleIds: [],
      reason: "allowed by rule 'a'",
      policyVersion: 7,
    });
  });

  test("a matching deny wins over any allow", () => {
    const d = decide(
      [
        rule({ id: "a" }),
        rule({ id: "d1", effect: Effect.DENY }),
        rule({ id: "d2", effect: Effect.DENY }),
      ],
      input({}),
    );
    assert.equal(d.allowed, false);
    assert.deepEqual(d.ruleIds, ["d1", "d2"]);
    assert.equal(d.reason, "denied by rules 'd1', 'd2'");
  });

  test("nothing matching denies", () => {
    const d = decide([rule({ id: "a", upstreams: ["openai"] })], input({}));
    assert.equal(d.allowed, false);
    assert.deepEqual(d.ruleIds, []);
    assert.equal(d.reason, "no rule matched");
  });

  test("dry-run rules are reported, never enforced", () => {
    const rules = [
      rule({ id: "allow-all" }),
      rule({ id: "would-deny", effect: Effect.DENY, mode: RuleMode.DRY_RUN }),
      rule({ id: "would-allow", mode: RuleMode.DRY_RUN, methods: ["GET"] }),
      rule({ id: "not-matching", mode: RuleMode.DRY_RUN, methods: ["POST"] }),
    ];
    const d = decide(rules, input({}));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.ruleIds, ["allow-all"]);
    assert.deepEqual(d.dryRunRuleIds, ["would-deny", "would-allow"]);
    // A dry-run allow alone never allows.
    const d2 = decide([rules[2] as PolicyRule], input({}));
    assert.equal(d2.allowed, false);
    assert.deepEqual(d2.dryRunRuleIds, ["would-allow"]);
  });

  test("every matching rule is named, and one evaluation's answer never changes another's", () => {
    const policy = compilePolicy({
      version: 7,
      rules: [
        rule({ id: "a" }),
        rule({ id: "b", methods: ["GET"] }),
        rule({ id: "w", mode: RuleMode.DRY_RUN, methods: ["POST"] }),
      ],
    });
    const get = policy.evaluate(input({}));
    assert.deepEqual(get.ruleIds, ["a", "b"]);
    assert.equal(get.reason, "allowed by rules 'a', 'b'");
    assert.deepEqual(get.dryRunRuleIds, []);
    const post = policy.evaluate(input({ method: "POST" }));
    assert.deepEqual(post.ruleIds, ["a"]);
    assert.deepEqual(post.dryRunRuleIds, ["w"]);
    // The common answers are shared between evaluations, so no caller can change them.
    const single = compilePolicy({ version: 7, rules: [rule({ id: "a" })] });
    const first = single.evaluate(input({}));
    assert.throws(() => (first.ruleIds as string[]).push("x"), TypeError);
    assert.throws(() => (first.dryRunRuleIds as string[]).push("x"), TypeError);
    assert.throws(() => {
      (first as { allowed: boolean }).allowed = false;
    }, TypeError);
    assert.deepEqual(single.evaluate(input({ path: "/other" })), {
      allowed: true,
      ruleIds: ["a"],
      dryRunRuleIds: [],
      reason: "allowed by rule 'a'",
      policyVersion: 7,
    });
    assert.deepEqual(policy.evaluate(input({ method: "POST" })), post);
  });

  test("upstream matcher", () => {
    const rules = [rule({ id: "a", upstreams: ["stripe", "github"] })];
    assert.equal(decide(rules, input({ slug: "stripe" })).allowed, true);
    assert.equal(decide(rules, input({ slug: "github" })).allowed, true);
    assert.equal(decide(rules, input({ slug: "openai" })).allowed, false);
  });

  test("method matcher is exact", () => {
    const rules = [rule({ id: "a", methods: ["GET", "HEAD"] })];
    assert.equal(decide(rules, input({ method: "GET" })).allowed, true);
    assert.equal(decide(rules, input({ method: "HEAD" })).allowed, true);
    assert.equal(decide(rules, input({ method: "POST" })).allowed, false);
    assert.equal(decide(rules, input({ method: "get" })).allowed, false);
  });

  test("path matcher with * and **", () => {
    const one = [rule({ id: "a", paths: ["/v1/charges/*"] })];
    assert.equal(decide(one, input({ path: "/v1/charges/ch_1" })).allowed, true);
    assert.equal(decide(one, input({ path: "/v1/charges/ch_1/refunds" })).allowed, false);
    const deep = [rule({ id: "a", paths: ["/v1/**"] })];
    assert.equal(decide(deep, input({ path: "/v1/charges/ch_1/refunds" })).allowed, true);
    assert.equal(decide(deep, input({ path: "/v2/charges" })).allowed, false);
  });

  test("a deny on a path blocks only that path", () => {
    const rules = [
      rule({ id: "all" }),
      rule({ id: "no-refunds", effect: Effect.DENY, paths: ["/v1/**/refunds"], methods: ["POST"] }),
    ];
    assert.equal(
      decide(rules, input({ method: "POST", path: "/v1/charges/ch_1/refunds" })).allowed,
      false,
    );
    assert.equal(
      decide(rules, input({ method: "GET", path: "/v1/charges/ch_1/refunds" })).allowed,
      true,
    );
    assert.equal(decide(rules, input({ method: "POST", path: "/v1/charges" })).allowed, true);
  });

  describe("conditions", () => {
    const team = 'token.attributes["team"] == "payments" && request.method in ["GET","HEAD"]';

    test("true matches, false does not", () => {
      const rules = [rule({ id: "a", condition: team })];
      assert.equal(decide(rules, input({})).allowed, true);
      assert.equal(decide(rules, input({ attributes: { team: "growth" } })).allowed, false);
      assert.equal(decide(rules, input({ method: "POST" })).allowed, false);
    });

    test("every variable is bound", () => {
      const rules = [
        rule({
          id: "a",
          condition:
            'token.id == "tok_1" && token.subject == "svc-billing" && request.path == "/v1/charges/ch_1" && ' +
            'request.client_address == "10.0.0.7" && request.headers["x-env"] == "prod" && ' +
            'upstream.slug == "stripe" && upstream.origin == "https://api.stripe.com" && ' +
            'request.time == timestamp("2025-03-04T10:00:00Z") && request.time.getHours() == 10',
        }),
      ];
      assert.equal(decide(rules, input({ headers: { "x-env": "prod" } })).allowed, true);
    });

    test("a runtime error does not match an allow rule", () => {
      const rules = [rule({ id: "a", condition: 'token.attributes["team"] == "payments"' })];
      const d = decide(rules, input({ attributes: {} }));
      assert.equal(d.allowed, false);
      assert.equal(d.reason, "no rule matched");
    });

    test("a runtime error matches a deny rule: deny rules fail closed", () => {
      const rules = [
        rule({ id: "all" }),
        rule({
          id: "int-level",
          effect: Effect.DENY,
          condition: "int(token.attributes.level) < 3",
        }),
      ];
      const d = decide(rules, input({ attributes: { level: "not-a-number" } }));
      assert.equal(d.allowed, false);
      assert.deepEqual(d.ruleIds, ["int-level"]);
      assert.match(d.reason, /failed to evaluate; deny rules fail closed/);
      // The reason never quotes request data (the CEL error would).
      assert.doesNotMatch(d.reason, /not-a-number/);
      assert.equal(decide(rules, input({ attributes: { level: "5" } })).allowed, true);
    });

    test("a dry-run deny that errors is reported as matching, like it would enforce", () => {
      const rules = [
        rule({ id: "all" }),
        rule({
          id: "dry",
          effect: Effect.DENY,
          mode: RuleMode.DRY_RUN,
          condition: 'token.attributes["missing"] == "x"',
        }),
      ];
      const d = decide(rules, input({}));
      assert.equal(d.allowed, true);
      assert.deepEqual(d.dryRunRuleIds, ["dry"]);
    });
  });

  test("accepts the generated PolicySet message (bigint version)", () => {
    const set = create(PolicySetSchema, {
      version: 12n,
      rules: [{ id: "a", effect: Effect.ALLOW, upstreams: ["stripe"] }],
    });
    const d = compilePolicy(set).evaluate(input({}));
    assert.equal(d.allowed, true);
    assert.equal(d.policyVersion, 12);
  });

  test("refuses an invalid set, listing every problem", () => {
    assert.throws(
      () =>
        compilePolicy({
          version: 1,
          rules: [rule({ id: "a", condition: "request.method == 1" }), rule({ id: "a" })],
        }),
      (err: unknown) => err instanceof PolicyCompileError && err.problems.length === 2,
    );
  });
});
