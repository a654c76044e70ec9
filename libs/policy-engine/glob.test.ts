import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compileGlobs, globProblem } from "./glob.ts";

const matches = (globs: string[], path: string) => compileGlobs(globs).test(path);

describe("path globs", () => {
  test("an empty list matches every path", () => {
    assert.equal(matches([], "/anything/at/all"), true);
  });

  test("literal globs match exactly", () => {
    assert.equal(matches(["/v1/charges"], "/v1/charges"), true);
    assert.equal(matches(["/v1/charges"], "/v1/charges/"), false);
    assert.equal(matches(["/v1/charges"], "/v1/Charges"), false);
    assert.equal(matches(["/v1/charges"], "/v1/chargesX"), false);
  });

  test("* matches within one segment only", () => {
    assert.equal(matches(["/v1/charges/*"], "/v1/charges/ch_1"), true);
    assert.equal(matches(["/v1/charges/*"], "/v1/charges/ch_1/refunds"), false);
    assert.equal(matches(["/v1/charges/*"], "/v1/charges/"), false);
    assert.equal(matches(["/v1/charges/*"], "/v1/charges"), false);
    assert.equal(matches(["/v1/*/refunds"], "/v1/ch_1/refunds"), true);
    assert.equal(matches(["/v1/ch_*"], "/v1/ch_1"), true);
    assert.equal(matches(["/v1/ch_*"], "/v1/ch_"), true);
    assert.equal(matches(["/v1/ch_*"], "/v1/re_1"), false);
  });

  test("** matches zero or more whole segments", () => {
    const g = ["/v1/charges/**"];
    assert.equal(matches(g, "/v1/charges"), true);
    assert.equal(matches(g, "/v1/charges/"), true);
    assert.equal(matches(g, "/v1/charges/ch_1"), true);
    assert.equal(matches(g, "/v1/charges/ch_1/refunds/re_2"), true);
    assert.equal(matches(g, "/v1/chargesX"), false);
    assert.equal(matches(g, "/v2/charges/ch_1"), false);
    assert.equal(matches(["/v1/**/refunds"], "/v1/refunds"), true);
    assert.equal(matches(["/v1/**/refunds"], "/v1/a/b/refunds"), true);
    assert.equal(matches(["/v1/**/refunds"], "/v1/a/b/refundsX"), false);
    assert.equal(matches(["/**"], "/"), true);
    assert.equal(matches(["/**"], "/a/b"), true);
  });

  test("percent-encoding is matched as the bytes forwarded, never decoded", () => {
    assert.equal(matches(["/files/a%20b"], "/files/a%20b"), true);
    assert.equal(matches(["/files/a%20b"], "/files/a b"), false);
    assert.equal(matches(["/files/*"], "/files/a%2Fb"), true);
    assert.equal(matches(["/files/a/b"], "/files/a%2Fb"), false);
  });

  test("regular-expression characters are literal", () => {
    assert.equal(matches(["/v1/a.b"], "/v1/a.b"), true);
    assert.equal(matches(["/v1/a.b"], "/v1/aXb"), false);
    assert.equal(matches(["/v1/(x)+"], "/v1/(x)+"), true);
  });

  test("the query string is ignored, so a deny on a path cannot be dodged with ?x", () => {
    assert.equal(matches(["/admin"], "/admin?x=1"), true);
  });

  test("any glob of a list may match", () => {
    assert.equal(matches(["/a", "/b/*"], "/b/c"), true);
    assert.equal(matches(["/a", "/b/*"], "/c"), false);
  });

  test("malformed globs are reported", () => {
    assert.equal(globProblem("/v1/**"), undefined);
    assert.equal(globProblem("/v1/*/x"), undefined);
    assert.match(globProblem("") ?? "", /empty/);
    assert.match(globProblem("v1/x") ?? "", /start with \//);
    assert.match(globProblem("/a**") ?? "", /whole segment/);
    assert.match(globProblem("/a/***") ?? "", /whole segment/);
    assert.match(globProblem("/a//b") ?? "", /empty segment/);
    assert.match(globProblem("/a/../b") ?? "", /\.\./);
    assert.match(globProblem("/a?b") ?? "", /\?/);
    assert.match(globProblem("/a#b") ?? "", /#/);
    assert.match(globProblem("/a b") ?? "", /spaces/);
    assert.match(globProblem("/a%zz") ?? "", /percent/);
    assert.throws(() => compileGlobs(["nope"]), /must start with/);
  });
});
