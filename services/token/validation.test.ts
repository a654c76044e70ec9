import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DomainError } from "../../libs/errors/index.ts";
import {
  resolveExpireTime,
  validateAllowedUpstreams,
  validateAttributes,
  validateDisplayName,
  validateExpireTime,
  validateRequestId,
  validateSubject,
} from "./validation.ts";

const now = new Date("2030-01-01T00:00:00Z");

function invalid(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DomainError);
    assert.equal(err.kind, "invalid_argument");
    assert.match(err.message, pattern);
    return true;
  });
}

describe("token input validation", () => {
  test("display_name: up to 200 characters, counted as characters not bytes", () => {
    assert.equal(validateDisplayName(""), "");
    assert.equal(validateDisplayName("é".repeat(200)), "é".repeat(200));
    invalid(() => validateDisplayName("x".repeat(201)), /display_name.*200/);
  });

  test("subject: up to 256 characters", () => {
    assert.equal(validateSubject("app:billing"), "app:billing");
    invalid(() => validateSubject("s".repeat(257)), /subject.*256/);
  });

  test("attributes: keys of [a-z0-9_.-] up to 63, values up to 256, at most 64 keys", () => {
    assert.deepEqual(validateAttributes({ "team.name": "core", env_1: "prod" }), {
      "team.name": "core",
      env_1: "prod",
    });
    assert.deepEqual(validateAttributes({ ["k".repeat(63)]: "v".repeat(256) }), {
      ["k".repeat(63)]: "v".repeat(256),
    });
    invalid(() => validateAttributes({ ["k".repeat(64)]: "v" }), /attribute keys/);
    invalid(() => validateAttributes({ Team: "v" }), /attribute keys/);
    invalid(() => validateAttributes({ "a b": "v" }), /attribute keys/);
    invalid(() => validateAttributes({ "": "v" }), /attribute keys/);
    invalid(() => validateAttributes({ k: "v".repeat(257) }), /attribute k: value.*256/);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    invalid(() => validateAttributes(many), /at most 64 keys/);
    const enough = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v"]));
    assert.equal(Object.keys(validateAttributes(enough)).length, 64);
  });

  test("a too-long attribute value is not echoed in the error", () => {
    const value = `lk_${"A".repeat(300)}`;
    assert.throws(
      () => validateAttributes({ k: value }),
      (err: Error) => !err.message.includes(value.slice(0, 20)),
    );
  });

  test("allowed_upstreams: slugs only, duplicates dropped", () => {
    assert.deepEqual(validateAllowedUpstreams(["stripe", "openai", "stripe"]), [
      "stripe",
      "openai",
    ]);
    invalid(() => validateAllowedUpstreams(["Stripe"]), /not an upstream slug/);
    invalid(() => validateAllowedUpstreams(["a/b"]), /not an upstream slug/);
    invalid(() => validateAllowedUpstreams([""]), /not an upstream slug/);
    invalid(() => validateAllowedUpstreams(Array.from({ length: 101 }, (_, i) => `u${i}`)), /100/);
  });

  test("expiry: ttl or expire_time in the future, not both", () => {
    assert.equal(resolveExpireTime(undefined, undefined, now), null);
    assert.deepEqual(
      resolveExpireTime(undefined, durationFromMs(3_600_000), now),
      new Date("2030-01-01T01:00:00Z"),
    );
    const later = new Date("2030-06-01T00:00:00Z");
    assert.deepEqual(resolveExpireTime(timestampFromDate(later), undefined, now), later);
    invalid(() => resolveExpireTime(timestampFromDate(now), undefined, now), /future/);
    invalid(
      () => resolveExpireTime(timestampFromDate(new Date("2029-01-01T00:00:00Z")), undefined, now),
      /future/,
    );
    invalid(() => resolveExpireTime(undefined, durationFromMs(0), now), /ttl must be positive/);
    invalid(() => resolveExpireTime(undefined, durationFromMs(-5000), now), /ttl must be positive/);
    invalid(
      () => resolveExpireTime(timestampFromDate(later), durationFromMs(1000), now),
      /not both/,
    );
    invalid(
      () => validateExpireTime({ ...timestampFromDate(later), seconds: 10n ** 15n }, now),
      /out of range/,
    );
  });

  test("request_id: empty is none, at most 100 characters", () => {
    assert.equal(validateRequestId(""), null);
    assert.equal(validateRequestId("r".repeat(100)), "r".repeat(100));
    invalid(() => validateRequestId("r".repeat(101)), /request_id.*100/);
  });
});
