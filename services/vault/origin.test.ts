import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { normalizeOrigin } from "./origin.ts";

describe("normalizeOrigin", () => {
  test("normalizes spellings of one origin to one form", () => {
    const cases: [string, string][] = [
      ["https://api.stripe.com", "https://api.stripe.com"],
      ["HTTPS://API.Stripe.COM", "https://api.stripe.com"],
      ["https://api.stripe.com/", "https://api.stripe.com"],
      ["https://api.stripe.com:443", "https://api.stripe.com"],
      ["http://internal.example:80", "http://internal.example"],
      ["http://internal.example:8080", "http://internal.example:8080"],
      ["https://internal.example:80", "https://internal.example:80"],
      ["https://[::1]:8443", "https://[::1]:8443"],
      ["https://bücher.example", "https://xn--bcher-kva.example"],
      ["http://127.0.0.1:3000", "http://127.0.0.1:3000"],
    ];
    for (const [input, expected] of cases) assert.equal(normalizeOrigin(input), expected, input);
  });

  test("refuses anything that is not an http(s) origin", () => {
    for (const input of [
      "",
      "api.stripe.com",
      "ftp://api.stripe.com",
      "file:///etc/passwd",
      "javascript:alert(1)",
      "https:api.stripe.com",
      "https:\\\\api.stripe.com",
      "https://api.stripe.com/v1",
      "https://api.stripe.com//",
      "https://api.stripe.com?x=1",
      "https://api.stripe.com?",
      "https://api.stripe.com#frag",
      "https://",
      "https://api.stripe.com:99999",
      " https://api.stripe.com",
      "https://api.stripe.com\n",
      "https://api stripe.com",
    ]) {
      assert.throws(() => normalizeOrigin(input), { kind: "invalid_argument" }, input);
    }
  });

  test("refuses user information without echoing it", () => {
    assert.throws(
      () => normalizeOrigin("https://user:hunter2@api.stripe.com"),
      (err: Error) => {
        assert.match(err.message, /user information/);
        assert.ok(!err.message.includes("hunter2"));
        return true;
      },
    );
  });

  test("names the field in the message", () => {
    assert.throws(
      () => normalizeOrigin("nope", "credential.allowed_origins"),
      /credential\.allowed_origins/,
    );
  });
});
