import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Effect, RuleMode, RuleSchema } from "../gen/latchkey/policy/v1/policy_pb.js";
import { checkRules } from "./check-rules.ts";
import { rule } from "./rule-fixture.ts";

/** The single problem reported for a rule with this condition. */
function conditionProblem(condition: string): string {
  const problems = checkRules([rule({ id: "r", condition })]);
  assert.equal(problems.length, 1, `expected one problem for ${condition}, got ${problems}`);
  return problems[0] as string;
}

describe("checkRules", () => {
  test("accepts a valid set, including generated Rule messages", () => {
    const rules = [
      create(RuleSchema, {
        id: "payments-read",
        effect: Effect.ALLOW,
        upstreams: ["stripe"],
        methods: ["GET", "HEAD"],
        paths: ["/v1/charges/**"],
        condition: 'token.attributes["team"] == "payments" && request.method in ["GET","HEAD"]',
      }),
      rule({ id: "no_deletes", effect: Effect.DENY, methods: ["DELETE"] }),
      rule({ id: "dry", mode: RuleMode.DRY_RUN, condition: "request.time.getHours() >= 8" }),
    ];
    assert.deepEqual(checkRules(rules), []);
  });

  test("ids must be well formed and unique", () => {
    const problems = checkRules([
      rule({ id: "ok" }),
      rule({ id: "ok" }),
      rule({ id: "Bad Id" }),
      rule({ id: "" }),
      rule({ id: "x".repeat(65) }),
    ]);
    assert.deepEqual(problems, [
      "rule 'ok': id is used by more than one rule",
      'rule #3: id "Bad Id" must be 1-64 characters of a-z, 0-9, - and _',
      'rule #4: id "" must be 1-64 characters of a-z, 0-9, - and _',
      `rule #5: id "${"x".repeat(65)}" must be 1-64 characters of a-z, 0-9, - and _`,
    ]);
  });

  test("effect must be set and mode known", () => {
    assert.deepEqual(checkRules([rule({ id: "a", effect: Effect.UNSPECIFIED })]), [
      "rule 'a': effect must be EFFECT_ALLOW or EFFECT_DENY",
    ]);
    assert.deepEqual(checkRules([rule({ id: "a", mode: 7 as RuleMode })]), [
      "rule 'a': mode must be RULE_MODE_ENFORCE or RULE_MODE_DRY_RUN",
    ]);
  });

  test("methods must be known upper-case tokens", () => {
    assert.deepEqual(checkRules([rule({ id: "a", methods: ["get", "FETCH"] })]), [
      `rule 'a': method "get" is not a known upper-case HTTP method (write GET)`,
      `rule 'a': method "FETCH" is not a known upper-case HTTP method`,
    ]);
  });

  test("upstream slugs and path globs must be well formed", () => {
    assert.deepEqual(
      checkRules([rule({ id: "a", upstreams: ["Stripe", "-x"], paths: ["v1", "/a**"] })]),
      [
        "rule 'a': upstream \"Stripe\" is not a valid slug ([a-z0-9][a-z0-9-]{0,62})",
        "rule 'a': upstream \"-x\" is not a valid slug ([a-z0-9][a-z0-9-]{0,62})",
        "rule 'a': path \"v1\" must start with /",
        "rule 'a': path \"/a**\" may use ** only as a whole segment (e.g. /v1/**)",
      ],
    );
  });

  test("every problem of every rule is reported", () => {
    const problems = checkRules([
      rule({ id: "a", methods: ["get"] }),
      rule({ id: "b", condition: "1" }),
    ]);
    assert.equal(problems.length, 2);
  });

  describe("conditions", () => {
    test("accept the documented example and common forms", () => {
      for (const condition of [
        'token.attributes["team"] == "payments" && request.method in ["GET","HEAD"]',
        '"team" in token.attributes && token.attributes.team == "payments"',
        'has(request.headers.origin) && request.headers.origin.endsWith(".example.com")',
        'request.path.startsWith("/v1/") || request.path.matches("^/v2/[a-z]+$")',
        'request.time.getDayOfWeek() >= 1 && request.time.getHours("Europe/Paris") < 18',
        'request.time < timestamp("2030-01-01T00:00:00Z")',
        'token.subject != "" && size(token.attributes) > 0',
        'request.headers.exists(k, k.startsWith("x-debug"))',
        'token.attributes.all(k, token.attributes[k] != "")',
        'upstream.slug == "stripe" && upstream.origin.startsWith("https://")',
        'request.client_address.startsWith("10.")',
        '(token.id == "tok_1" ? 1 : 2) == 1',
        "dyn(token.attributes.level) == 3",
        "int(token.attributes.level) >= 3",
      ]) {
        assert.deepEqual(checkRules([rule({ id: "r", condition })]), [], condition);
      }
    });

    test("reject comparisons between different types", () => {
      assert.equal(
        conditionProblem("request.method == 1"),
        "rule 'r': condition type error at column 16: no matching overload for '==' applied to (string, int): the values can never be equal",
      );
      assert.match(
        conditionProblem('request.time > "2020"'),
        /'>' applied to \(timestamp, string\)/,
      );
      assert.match(
        conditionProblem("token.attributes.level > 3"),
        /'>' applied to \(string, int\)/,
      );
      assert.match(conditionProblem('1 in ["a"]'), /int can never be in a list\(string\)/);
    });

    test("reject a non-bool result", () => {
      assert.equal(
        conditionProblem("request.method"),
        "rule 'r': condition must evaluate to bool, but evaluates to string",
      );
      assert.match(conditionProblem("size(request.path)"), /evaluates to int/);
    });

    test("reject unknown variables and fields", () => {
      assert.match(
        conditionProblem('user.name == "x"'),
        /undeclared reference to 'user' \(variables: token, request, upstream\)/,
      );
      assert.match(
        conditionProblem('request.methd == "GET"'),
        /request has no field 'methd' \(fields: method, path, client_address, headers, time\)/,
      );
      assert.match(conditionProblem('token.attrs["a"] == "b"'), /token has no field 'attrs'/);
    });

    test("reject unknown functions and wrong arguments", () => {
      assert.match(conditionProblem('request.path.lowerAscii() == "x"'), /undeclared function/);
      assert.match(
        conditionProblem("request.path.startsWith(1)"),
        /no method 'startsWith' on string/,
      );
      assert.match(conditionProblem("!request.path"), /'!' applied to \(string\)/);
      assert.match(conditionProblem("request.path && true"), /each operand of '&&' must be bool/);
    });

    test("reject a constant matches() pattern that does not compile", () => {
      assert.match(
        conditionProblem('request.path.matches("(unclosed")'),
        /type error at column 22: invalid regular expression "\(unclosed"/,
      );
      assert.deepEqual(
        checkRules([rule({ id: "r", condition: 'request.path.matches("^/v[0-9]+/")' })]),
        [],
      );
    });

    test("report syntax errors with a position", () => {
      assert.match(
        conditionProblem("request.method =="),
        /^rule 'r': condition syntax error at 1:\d+: /,
      );
      assert.match(conditionProblem("(("), /syntax error/);
    });

    test("reject oversized conditions", () => {
      assert.match(conditionProblem(`true${" && true".repeat(600)}`), /longer than 4096/);
    });
  });
});
