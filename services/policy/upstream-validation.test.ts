import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { DomainError } from "../../libs/errors/index.ts";
import { AuditMode } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import {
  checkUpdateMask,
  normalizeBasePath,
  normalizeOrigin,
  resolveAuditMode,
  resolveMaxRequestBodyBytes,
  resolveRequestTimeout,
  validateCredential,
  validateSlug,
} from "./upstream-validation.ts";

/** Asserts `fn` throws a DomainError of `kind` whose message matches `message`. */
function rejects(fn: () => unknown, kind: string, message: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DomainError, String(err));
    assert.equal(err.kind, kind);
    assert.match(err.message, message);
    return true;
  });
}

const duration = (seconds: number, nanos = 0) =>
  create(DurationSchema, { seconds: BigInt(seconds), nanos });

describe("upstream validation", () => {
  test("slugs", () => {
    for (const ok of ["stripe", "a", "open-ai", "0x", "a".repeat(63)]) {
      assert.equal(validateSlug(ok), ok);
    }
    for (const bad of ["", "-a", "Stripe", "a_b", "a.b", "a/b", "a".repeat(64), "é"]) {
      rejects(() => validateSlug(bad), "invalid_argument", /upstream_id must be 1-63 characters/);
    }
  });

  describe("origin", () => {
    test("normalizes scheme, host case and default ports", () => {
      assert.equal(normalizeOrigin("https://api.stripe.com"), "https://api.stripe.com");
      assert.equal(normalizeOrigin("HTTPS://API.Stripe.COM/"), "https://api.stripe.com");
      assert.equal(normalizeOrigin("https://api.stripe.com:443"), "https://api.stripe.com");
      assert.equal(normalizeOrigin("http://internal:80"), "http://internal");
      assert.equal(normalizeOrigin("http://internal:8080"), "http://internal:8080");
      assert.equal(normalizeOrigin("https://10.0.0.1:8443"), "https://10.0.0.1:8443");
      assert.equal(normalizeOrigin("http://[::1]:9000"), "http://[::1]:9000");
      assert.equal(normalizeOrigin("https://bücher.example"), "https://xn--bcher-kva.example");
    });

    test("rejects paths, queries and fragments", () => {
      for (const bad of [
        "https://api.stripe.com/v1",
        "https://api.stripe.com//",
        "https://api.stripe.com/?x=1",
        "https://api.stripe.com?x=1",
        "https://api.stripe.com#frag",
      ]) {
        rejects(
          () => normalizeOrigin(bad),
          "invalid_argument",
          /must not have a path, query or fragment/,
        );
      }
    });

    test("rejects userinfo without echoing it", () => {
      for (const bad of ["https://user:s3cret@api.example.com", "https://user@api.example.com"]) {
        assert.throws(
          () => normalizeOrigin(bad),
          (err: unknown) =>
            err instanceof DomainError &&
            /user info/.test(err.message) &&
            !err.message.includes("s3cret"),
        );
      }
    });

    test("rejects other schemes, relative URLs and bad hosts", () => {
      rejects(() => normalizeOrigin(""), "invalid_argument", /origin is required/);
      rejects(() => normalizeOrigin("ftp://x.example"), "invalid_argument", /http or https/);
      rejects(
        () => normalizeOrigin("api.stripe.com"),
        "invalid_argument",
        /absolute http\(s\) URL/,
      );
      rejects(() => normalizeOrigin("//api.stripe.com"), "invalid_argument", /absolute/);
      rejects(() => normalizeOrigin("https://"), "invalid_argument", /name a host/);
      rejects(() => normalizeOrigin("https://a b.com"), "invalid_argument", /name a host/);
      rejects(
        () => normalizeOrigin("https://x.com:99999"),
        "invalid_argument",
        /invalid host or port/,
      );
    });
  });

  describe("base path", () => {
    test("accepts and normalizes prefixes", () => {
      assert.equal(normalizeBasePath(""), "");
      assert.equal(normalizeBasePath("/"), "");
      assert.equal(normalizeBasePath("/v1"), "/v1");
      assert.equal(normalizeBasePath("/v1/"), "/v1");
      assert.equal(normalizeBasePath("/api/v2/a%20b"), "/api/v2/a%20b");
    });

    test("rejects traversal, //, query, fragment and encoded slashes", () => {
      const cases: Array<[string, RegExp]> = [
        ["v1", /start with \//],
        ["/a/../b", /\. or \.\. segments/],
        ["/..", /\. or \.\. segments/],
        ["/a/./b", /\. or \.\. segments/],
        ["/a//b", /\/\//],
        ["/a?b=1", /\? or #/],
        ["/a#b", /\? or #/],
        ["/a%2Fb", /encoded slashes/],
        ["/a%2fb", /encoded slashes/],
        ["/a%5Cb", /encoded slashes/],
        ["/a%00", /encoded slashes/],
        ["/a%zz", /malformed percent/],
        ["/a b", /whitespace/],
        ["/a\\b", /whitespace/],
      ];
      for (const [bad, message] of cases)
        rejects(() => normalizeBasePath(bad), "invalid_argument", message);
    });
  });

  test("credential must be in the same tenant", () => {
    assert.equal(validateCredential("", "acme"), "");
    assert.equal(
      validateCredential("tenants/acme/credentials/cred_01abc", "acme"),
      "tenants/acme/credentials/cred_01abc",
    );
    rejects(
      () => validateCredential("tenants/other/credentials/cred_01abc", "acme"),
      "invalid_argument",
      /must belong to tenant acme/,
    );
    for (const bad of [
      "cred_01abc",
      "tenants/acme/tokens/x",
      "tenants/acme/credentials/",
      "tenants/acme/credentials/a/b",
    ]) {
      rejects(
        () => validateCredential(bad, "acme"),
        "invalid_argument",
        /tenants\/\{tenant\}\/credentials/,
      );
    }
  });

  test("request timeout: default 30 s, 1 ms to 5 min", () => {
    assert.equal(resolveRequestTimeout(undefined), 30_000);
    assert.equal(resolveRequestTimeout(duration(0, 1_000_000)), 1);
    assert.equal(resolveRequestTimeout(duration(300)), 300_000);
    assert.equal(resolveRequestTimeout(duration(2, 500_000_000)), 2500);
    rejects(() => resolveRequestTimeout(duration(0)), "invalid_argument", /between 1ms and 5m/);
    rejects(
      () => resolveRequestTimeout(duration(0, 999_999)),
      "invalid_argument",
      /between 1ms and 5m/,
    );
    rejects(() => resolveRequestTimeout(duration(301)), "invalid_argument", /between 1ms and 5m/);
    rejects(() => resolveRequestTimeout(duration(-1)), "invalid_argument", /negative/);
  });

  test("body limit: default 10 MiB, at most 1 GiB", () => {
    assert.equal(resolveMaxRequestBodyBytes(0n), 10 * 1024 * 1024);
    assert.equal(resolveMaxRequestBodyBytes(1n), 1);
    assert.equal(resolveMaxRequestBodyBytes(1024n ** 3n), 1024 ** 3);
    rejects(() => resolveMaxRequestBodyBytes(1024n ** 3n + 1n), "invalid_argument", /at most/);
    rejects(() => resolveMaxRequestBodyBytes(-1n), "invalid_argument", /negative/);
  });

  test("audit mode: async by default, sync refused as not available yet", () => {
    assert.equal(resolveAuditMode(AuditMode.UNSPECIFIED), "async");
    assert.equal(resolveAuditMode(AuditMode.ASYNC), "async");
    rejects(
      () => resolveAuditMode(AuditMode.SYNC),
      "failed_precondition",
      /^sync audit mode is not available yet$/,
    );
    rejects(() => resolveAuditMode(9 as AuditMode), "invalid_argument", /audit_mode/);
  });

  test("update masks name known fields", () => {
    assert.deepEqual([...checkUpdateMask(["origin", "base_path"])], ["origin", "base_path"]);
    rejects(() => checkUpdateMask([]), "invalid_argument", /must name fields/);
    rejects(() => checkUpdateMask(["name"]), "invalid_argument", /paths\[0\] is not one of/);
    rejects(() => checkUpdateMask(["origin", "etag"]), "invalid_argument", /paths\[1\]/);
  });
});
