import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../libs/config/index.ts";
import { loadConfig } from "./config.ts";

test("audit config has working defaults", () => {
  const config = loadConfig({});
  assert.equal(config.LATCHKEY_AUDIT_PORT, 7004);
  assert.equal(config.LATCHKEY_AUDIT_BATCH_SIZE, 512);
  assert.equal(config.LATCHKEY_AUDIT_CONSUMERS, 16);
  assert.equal(config.LATCHKEY_AUDIT_BATCH_LINGER_MS, 5);
  assert.equal(config.LATCHKEY_AUDIT_STREAM_BUFFER, 1000);
});

test("audit config lists every bad variable at once", () => {
  assert.throws(
    () => loadConfig({ LATCHKEY_AUDIT_BATCH_SIZE: "0", LATCHKEY_AUDIT_PORT: "http" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes("LATCHKEY_AUDIT_BATCH_SIZE") &&
      err.message.includes("LATCHKEY_AUDIT_PORT"),
  );
});
