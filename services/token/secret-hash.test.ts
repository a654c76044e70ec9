import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { generateTokenSecret } from "../../libs/token-format/index.ts";
import { createSecretHasher } from "./secret-hash.ts";

const pepper = "p".repeat(32);

describe("secret hashing", () => {
  test("is HMAC-SHA-256 keyed with the pepper, 32 bytes", () => {
    const { secret } = generateTokenSecret();
    const hash = createSecretHasher(pepper)(secret);
    assert.equal(hash.length, 32);
    assert.deepEqual(hash, createHmac("sha256", pepper).update(secret).digest());
  });

  test("is deterministic for one pepper and differs across peppers and secrets", () => {
    const { secret } = generateTokenSecret();
    const a = createSecretHasher(pepper);
    const b = createSecretHasher("q".repeat(32));
    assert.deepEqual(a(secret), a(secret));
    assert.notDeepEqual(a(secret), b(secret));
    assert.notDeepEqual(a(secret), a(generateTokenSecret().secret));
  });

  test("the hash does not contain the secret", () => {
    const { secret } = generateTokenSecret();
    const hash = createSecretHasher(pepper)(secret);
    assert.ok(!hash.includes(Buffer.from(secret)));
    assert.ok(!hash.toString("latin1").includes(secret.slice(3, 11)));
  });

  test("refuses a short pepper without echoing it", () => {
    assert.throws(
      () => createSecretHasher("short-pepper"),
      (err: Error) => !err.message.includes("short-pepper") && /32 characters/.test(err.message),
    );
  });
});
