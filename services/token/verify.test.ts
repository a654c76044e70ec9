import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { VerifyFailure } from "../../libs/gen/latchkey/token/v1/token_pb.js";
import type { VerifyRow } from "./store.ts";
import { cacheTtlMs, verdict } from "./verify.ts";

const now = new Date("2030-01-01T00:00:00Z");
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);

function row(overrides: Partial<VerifyRow> = {}): VerifyRow {
  return {
    tenant: "acme",
    id: "tok_01",
    subject: "app",
    attributes: { team: "core" },
    allowedUpstreams: ["stripe"],
    expireTime: null,
    state: "active",
    secretExpireTime: null,
    ...overrides,
  };
}

const ttlOf = (res: ReturnType<typeof verdict>) => (res.cacheTtl ? durationMs(res.cacheTtl) : -1);

describe("verify verdict", () => {
  test("a valid token gives claims and the full cache TTL", () => {
    const res = verdict(row(), now);
    assert.equal(res.failure, VerifyFailure.UNSPECIFIED);
    assert.equal(res.claims?.name, "tenants/acme/tokens/tok_01");
    assert.equal(res.claims?.tenant, "acme");
    assert.equal(res.claims?.subject, "app");
    assert.deepEqual(res.claims?.attributes, { team: "core" });
    assert.deepEqual(res.claims?.allowedUpstreams, ["stripe"]);
    assert.equal(res.claims?.expireTime, undefined);
    assert.equal(ttlOf(res), cacheTtlMs.valid);
  });

  test("the cache TTL of a valid answer never outlives the token", () => {
    const res = verdict(row({ expireTime: at(10_000) }), now);
    assert.equal(res.failure, VerifyFailure.UNSPECIFIED);
    assert.equal(ttlOf(res), 10_000);
    assert.deepEqual(res.claims?.expireTime && timestampDate(res.claims.expireTime), at(10_000));
    assert.equal(ttlOf(verdict(row({ expireTime: at(3_600_000) }), now)), cacheTtlMs.valid);
  });

  test("during a rotation grace period the claims expire with the old secret", () => {
    const res = verdict(row({ expireTime: at(3_600_000), secretExpireTime: at(30_000) }), now);
    assert.equal(res.failure, VerifyFailure.UNSPECIFIED);
    assert.deepEqual(res.claims?.expireTime && timestampDate(res.claims.expireTime), at(30_000));
    assert.equal(ttlOf(res), 30_000);
  });

  test("refusals carry only the name and tenant of a token that exists", () => {
    const cases: [VerifyRow | undefined, VerifyFailure, number][] = [
      [undefined, VerifyFailure.NOT_FOUND, cacheTtlMs.notFound],
      [row({ state: "revoked" }), VerifyFailure.REVOKED, cacheTtlMs.revoked],
      [row({ expireTime: now }), VerifyFailure.EXPIRED, cacheTtlMs.expired],
      [row({ expireTime: at(-1) }), VerifyFailure.EXPIRED, cacheTtlMs.expired],
      [row({ secretExpireTime: at(-1) }), VerifyFailure.ROTATED, cacheTtlMs.rotated],
      // Revocation wins over expiry; the token's expiry over a rotated secret's.
      [row({ state: "revoked", expireTime: at(-1) }), VerifyFailure.REVOKED, cacheTtlMs.revoked],
      [row({ expireTime: at(-1), secretExpireTime: at(-1) }), VerifyFailure.EXPIRED, 60_000],
    ];
    for (const [input, failure, ttl] of cases) {
      const res = verdict(input, now);
      assert.equal(res.failure, failure);
      if (input) {
        // Enough to audit the refusal under the token, nothing a policy could use.
        assert.equal(res.claims?.name, "tenants/acme/tokens/tok_01");
        assert.equal(res.claims?.tenant, "acme");
        assert.equal(res.claims?.subject, "");
        assert.deepEqual(res.claims?.attributes, {});
      } else {
        assert.equal(res.claims, undefined);
      }
      assert.equal(ttlOf(res), ttl);
    }
  });
});
