import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError, commonEnv, loadEnv, port, storageEnv, z } from "./index.ts";

test("defaults apply when nothing is set", () => {
  const config = loadEnv({ ...commonEnv, ...storageEnv }, {});
  assert.equal(config.LATCHKEY_HOST, "127.0.0.1");
  assert.equal(config.LATCHKEY_DATA_DIR, ".latchkey");
  assert.equal(config.LATCHKEY_MIGRATE_ON_START, true);
  assert.equal(config.LATCHKEY_NATS_NAMESPACE, "");
});

test("a NAME_FILE variable supplies the value, trimmed; NAME wins over it", () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-config-"));
  try {
    const file = join(dir, "gateway-key");
    writeFileSync(file, `${"k".repeat(40)}\n`);
    assert.equal(
      loadEnv(commonEnv, { LATCHKEY_GATEWAY_KEY_FILE: file }).LATCHKEY_GATEWAY_KEY,
      "k".repeat(40),
    );
    const direct = "d".repeat(40);
    assert.equal(
      loadEnv(commonEnv, { LATCHKEY_GATEWAY_KEY: direct, LATCHKEY_GATEWAY_KEY_FILE: file })
        .LATCHKEY_GATEWAY_KEY,
      direct,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every problem is listed at once, naming variables but never secret values", () => {
  const secret = "lka_short";
  try {
    loadEnv(
      { ...commonEnv, ...storageEnv, LATCHKEY_X_PORT: port(1) },
      {
        LATCHKEY_GATEWAY_KEY: "too-short-secret",
        LATCHKEY_ADMIN_KEY: "not-an-admin-key",
        LATCHKEY_X_PORT: "99999",
        LATCHKEY_TLS_CA_FILE_FILE: "/nonexistent/ca",
        LATCHKEY_LOG_LEVEL: "loud",
      },
    );
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    for (const name of [
      "LATCHKEY_GATEWAY_KEY",
      "LATCHKEY_ADMIN_KEY",
      "LATCHKEY_X_PORT",
      "LATCHKEY_TLS_CA_FILE_FILE",
      "LATCHKEY_LOG_LEVEL",
    ]) {
      assert.match(err.message, new RegExp(name), name);
    }
    assert.ok(!err.message.includes("too-short-secret"));
    assert.ok(!err.message.includes(secret));
  }
});

test("a component's own shape is parsed with coercion", () => {
  const config = loadEnv({ LATCHKEY_N: z.coerce.number().int().default(3) }, { LATCHKEY_N: "7" });
  assert.equal(config.LATCHKEY_N, 7);
});
