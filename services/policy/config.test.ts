import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../libs/config/index.ts";
import { loadConfig } from "./config.ts";

test("policy config: defaults, overrides and errors", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.LATCHKEY_POLICY_PORT, 7002);
  assert.equal(defaults.LATCHKEY_POLICY_BUNDLE_TTL_MS, 30_000);
  const custom = loadConfig({
    LATCHKEY_POLICY_PORT: "9002",
    LATCHKEY_POLICY_BUNDLE_TTL_MS: "5000",
  });
  assert.equal(custom.LATCHKEY_POLICY_PORT, 9002);
  assert.equal(custom.LATCHKEY_POLICY_BUNDLE_TTL_MS, 5000);
  assert.throws(() => loadConfig({ LATCHKEY_POLICY_PORT: "70000" }), ConfigError);
});
