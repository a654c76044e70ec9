import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  displayPrefixLength,
  encodeBase62,
  generateTokenSecret,
  parseTokenSecret,
  tokenSecretLength,
} from "./index.ts";

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

describe("token secret format", () => {
  test("a generated secret is lk_ + 33 base62 characters and parses back", () => {
    for (let i = 0; i < 200; i++) {
      const { secret, displayPrefix } = generateTokenSecret();
      assert.equal(secret.length, tokenSecretLength);
      assert.equal(tokenSecretLength, 36);
      assert.match(secret, /^lk_[0-9A-Za-z]{33}$/);
      assert.equal(displayPrefix, secret.slice(0, displayPrefixLength));
      assert.equal(displayPrefix.length, 8);
      assert.deepEqual(parseTokenSecret(secret), { secret, displayPrefix });
    }
  });

  test("secrets do not repeat", () => {
    const seen = new Set(Array.from({ length: 1000 }, () => generateTokenSecret().secret));
    assert.equal(seen.size, 1000);
  });

  test("any single changed character fails the checksum", () => {
    const { secret } = generateTokenSecret();
    for (let i = 3; i < secret.length; i++) {
      const original = secret[i] as string;
      const replacement = alphabet[(alphabet.indexOf(original) + 1) % alphabet.length] as string;
      const flipped = secret.slice(0, i) + replacement + secret.slice(i + 1);
      assert.equal(parseTokenSecret(flipped), undefined, `position ${i}`);
    }
  });

  test("swapped case fails the checksum (base62 is case-sensitive)", () => {
    let { secret } = generateTokenSecret();
    while (!/[a-zA-Z]/.test(secret.slice(3))) secret = generateTokenSecret().secret;
    const i = secret.slice(3).search(/[a-zA-Z]/) + 3;
    const c = secret[i] as string;
    const swapped = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
    assert.equal(parseTokenSecret(secret.slice(0, i) + swapped + secret.slice(i + 1)), undefined);
  });

  test("wrong lengths, prefix and alphabet are refused", () => {
    const { secret } = generateTokenSecret();
    assert.equal(parseTokenSecret(""), undefined);
    assert.equal(parseTokenSecret(secret.slice(0, -1)), undefined);
    assert.equal(parseTokenSecret(`${secret}0`), undefined);
    assert.equal(parseTokenSecret(`0${secret}`), undefined);
    assert.equal(parseTokenSecret(`LK_${secret.slice(3)}`), undefined);
    assert.equal(parseTokenSecret(`lx_${secret.slice(3)}`), undefined);
    assert.equal(parseTokenSecret(`${secret.slice(0, 10)}-${secret.slice(11)}`), undefined);
    assert.equal(parseTokenSecret(` ${secret.slice(1)}`), undefined);
    assert.equal(parseTokenSecret(`Bearer ${secret}`), undefined);
  });

  test("base62 pads to a fixed width and refuses values that do not fit", () => {
    assert.equal(encodeBase62(0n, 6), "000000");
    assert.equal(encodeBase62(61n, 2), "0z");
    assert.equal(encodeBase62(62n, 2), "10");
    // The largest 160-bit value still fits in 27 digits, so no body is ever longer.
    assert.equal(encodeBase62(2n ** 160n - 1n, 27).length, 27);
    // And the largest CRC32 fits in 6.
    assert.equal(encodeBase62(2n ** 32n - 1n, 6).length, 6);
    assert.throws(() => encodeBase62(62n ** 6n, 6), RangeError);
  });
});
