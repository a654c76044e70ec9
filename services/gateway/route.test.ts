import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isRefusal, refusals } from "./refusal.ts";
import { declaresBody, type ProxyRoute, route } from "./route.ts";

const limits = { maxTargetBytes: 256 };
const token = `lk_${"A".repeat(33)}`;

function proxy(target: string, rawHeaders: string[] = [], method = "GET"): ProxyRoute {
  const result = route(method, target, rawHeaders, limits);
  assert.equal(result.kind, "proxy", `expected ${target} to route, got ${JSON.stringify(result)}`);
  return result as ProxyRoute;
}

function refused(target: string, rawHeaders: string[] = [], method = "GET") {
  const result = route(method, target, rawHeaders, limits);
  assert.ok(isRefusal(result), `expected ${target} to be refused`);
  return result;
}

describe("route: normal paths", () => {
  test("splits slug, canonical path and query", () => {
    const r = proxy("/stripe/v1/charges?limit=3&starting_after=ch_1");
    assert.equal(r.slug, "stripe");
    assert.equal(r.path, "/v1/charges");
    assert.equal(r.query, "limit=3&starting_after=ch_1");
  });

  test("keeps the path bytes as sent, escapes included", () => {
    const r = proxy("/api/v1/files/a%20b%2Bc.txt");
    assert.equal(r.path, "/v1/files/a%20b%2Bc.txt");
    assert.equal(r.query, "");
    // Canonical escapes of non-ASCII bytes (upper-case hex) pass as they are.
    assert.equal(proxy("/api/caf%C3%A9").path, "/caf%C3%A9");
  });

  test("a bare slug forwards to /", () => {
    assert.equal(proxy("/api").path, "/");
    assert.equal(proxy("/api/").path, "/");
    const withQuery = proxy("/api?x=1");
    assert.equal(withQuery.path, "/");
    assert.equal(withQuery.query, "x=1");
  });

  test("an empty query is kept empty", () => {
    const r = proxy("/api/v1?");
    assert.equal(r.path, "/v1");
    assert.equal(r.query, "");
  });

  test("dots inside names are not dot segments", () => {
    assert.equal(proxy("/api/v1/.well-known/x").path, "/v1/.well-known/x");
    assert.equal(proxy("/api/v1/.../a..b/file.txt").path, "/v1/.../a..b/file.txt");
  });

  test("query strings may hold what paths may not", () => {
    assert.equal(proxy("/api/v1?next=/a/../b&x=%2F").query, "next=/a/../b&x=%2F");
  });

  test("finds the token in each supported place", () => {
    assert.equal(proxy("/api/x", ["Authorization", `Bearer ${token}`]).secret, token);
    assert.equal(proxy("/api/x", ["authorization", `bearer  ${token}`]).secret, token);
    assert.equal(proxy("/api/x", ["Authorization", `token ${token}`]).secret, token);
    const apiKey = proxy("/api/x", ["X-API-Key", token]);
    assert.equal(apiKey.secret, token);
    assert.equal(apiKey.credentialSource, "x-api-key");
    assert.equal(proxy("/api/x").secret, undefined);
  });

  test("another Authorization scheme yields an empty (invalid) token", () => {
    assert.equal(proxy("/api/x", ["Authorization", "Basic dXNlcjpwYXNz"]).secret, "");
  });

  test("reads body framing from the headers", () => {
    assert.equal(proxy("/api/x", ["Content-Length", "12"], "POST").contentLength, 12);
    const chunked = proxy("/api/x", ["Transfer-Encoding", "chunked"], "POST");
    assert.equal(chunked.chunked, true);
    assert.equal(chunked.contentLength, -1);
    assert.equal(proxy("/api/x").contentLength, -1);
    assert.equal(declaresBody(["content-length", "3"]), true);
    assert.equal(declaresBody(["content-length", "0"]), false);
    assert.equal(declaresBody(["transfer-encoding", "chunked"]), true);
    assert.equal(declaresBody(["accept", "*/*"]), false);
  });

  test("reserved endpoints", () => {
    assert.deepEqual(route("GET", "/_latchkey/healthz", [], limits), {
      kind: "internal",
      endpoint: "healthz",
    });
    assert.deepEqual(route("GET", "/_latchkey/readyz?verbose", [], limits), {
      kind: "internal",
      endpoint: "readyz",
    });
    assert.equal(refused("/_latchkey/other"), refusals.notFound);
    assert.equal(refused("/_anything/x"), refusals.notFound);
  });
});

describe("route: rejections", () => {
  const cases: [string, string, ReturnType<typeof refused>][] = [
    ["absolute-form", "http://evil.example/x", refusals.absoluteForm],
    ["absolute-form https", "https://evil.example/api/x", refusals.absoluteForm],
    ["asterisk-form", "*", refusals.absoluteForm],
    ["scheme-relative //host", "//evil.example/x", refusals.emptySegment],
    ["empty segment", "/api/v1//admin", refusals.emptySegment],
    ["encoded slash", "/api/v1%2fadmin", refusals.encodedSeparator],
    ["encoded slash upper", "/api/v1%2Fadmin", refusals.encodedSeparator],
    ["encoded backslash", "/api/v1%5cadmin", refusals.encodedSeparator],
    ["encoded backslash upper", "/api/v1%5Cadmin", refusals.encodedSeparator],
    ["encoded NUL", "/api/file%00.txt", refusals.encodedSeparator],
    ["dot segment", "/api/./x", refusals.dotSegment],
    ["dot-dot segment", "/api/v1/../admin", refusals.dotSegment],
    ["trailing dot-dot", "/api/v1/..", refusals.dotSegment],
    ["trailing dot-dot before query", "/api/v1/..?x=1", refusals.dotSegment],
    ["dot-dot as slug", "/../api", refusals.dotSegment],
    ["encoded dot", "/api/%2e/x", refusals.nonCanonicalEscape],
    ["encoded dot-dot", "/api/%2e%2e/admin", refusals.nonCanonicalEscape],
    ["encoded dot-dot upper", "/api/%2E%2E/admin", refusals.nonCanonicalEscape],
    ["mixed dot-dot", "/api/.%2E/admin", refusals.nonCanonicalEscape],
    ["dot-dot with matrix params (Tomcat)", "/api/..;jsessionid=x/admin", refusals.semicolon],
    // Second spellings of /api/admin that upstreams decode but policy globs would not match.
    ["encoded letter", "/api/%61dmin/users", refusals.nonCanonicalEscape],
    ["encoded upper letter", "/api/%41dmin", refusals.nonCanonicalEscape],
    ["encoded digit", "/api/v%31/x", refusals.nonCanonicalEscape],
    ["encoded tilde", "/api/%7Euser", refusals.nonCanonicalEscape],
    ["lower-case hex escape", "/api/caf%c3%a9", refusals.nonCanonicalEscape],
    ["path parameter", "/api/admin;x/users", refusals.semicolon],
    ["encoded path parameter", "/api/admin%3Bx/users", refusals.semicolon],
    ["backslash", "/api/v1\\admin", refusals.backslash],
    ["malformed escape", "/api/v1%zz", refusals.badPercent],
    ["truncated escape", "/api/v1%2", refusals.badPercent],
    ["fragment", "/api/v1#frag", refusals.badCharacter],
    ["non-ASCII", "/api/v1/caf\u00e9", refusals.badCharacter],
    ["space in query", "/api/v1?a=b c", refusals.badCharacter],
    ["missing upstream", "/", refusals.missingUpstream],
    ["missing upstream before query", "/?x=1", refusals.missingUpstream],
    ["upper-case slug", "/Stripe/v1", refusals.badSlug],
    ["slug starting with dash", "/-api/v1", refusals.badSlug],
    ["slug too long", `/${"a".repeat(64)}/v1`, refusals.badSlug],
    ["over-long target", `/api/${"a".repeat(300)}`, refusals.targetTooLong],
  ];
  for (const [name, target, expected] of cases) {
    test(name, () => {
      assert.equal(refused(target), expected);
    });
  }

  test("a target exactly at the limit is accepted", () => {
    const target = `/api/${"a".repeat(limits.maxTargetBytes - 5)}`;
    assert.equal(target.length, limits.maxTargetBytes);
    assert.equal(proxy(target).slug, "api");
  });

  test("two Authorization headers", () => {
    const r = refused("/api/x", [
      "Authorization",
      `Bearer ${token}`,
      "authorization",
      "Bearer other",
    ]);
    assert.equal(r, refusals.duplicateCredentials);
  });

  test("two x-api-key headers", () => {
    assert.equal(
      refused("/api/x", ["x-api-key", token, "X-Api-Key", token]),
      refusals.duplicateCredentials,
    );
  });

  test("Authorization and x-api-key at once", () => {
    assert.equal(
      refused("/api/x", ["x-api-key", token, "Authorization", `Bearer ${token}`]),
      refusals.duplicateCredentials,
    );
  });

  test("TRACE and CONNECT", () => {
    assert.equal(refused("/api/x", [], "TRACE"), refusals.methodNotAllowed);
    assert.equal(refused("/api/x", [], "CONNECT"), refusals.methodNotAllowed);
  });

  test("refusal bodies are the documented JSON shape and never echo input", () => {
    const r = refused("/api/v1/../admin");
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body.toString()), {
      error: { code: "invalid_request", message: "dot segment in path" },
    });
  });
});
