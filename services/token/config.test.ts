import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError } from "../../libs/config/index.ts";
import { loadConfig } from "./config.ts";

const pepper = "0123456789abcdef0123456789abcdef";

describe("token config", () => {
  test("defaults: port 7001, no pepper needed in embedded mode", () => {
    const config = loadConfig({});
    assert.equal(config.LATCHKEY_TOKEN_PORT, 7001);
    assert.equal(config.LATCHKEY_TOKEN_PEPPER, undefined);
  });

  test("cluster mode requires a pepper", () => {
    assert.throws(
      () => loadConfig({ LATCHKEY_DATABASE_URL: "postgres://db/latchkey" }),
      (err: unknown) => err instanceof ConfigError && /LATCHKEY_TOKEN_PEPPER/.test(err.message),
    );
    const config = loadConfig({
      LATCHKEY_DATABASE_URL: "postgres://db/latchkey",
      LATCHKEY_TOKEN_PEPPER: pepper,
      LATCHKEY_TOKEN_PORT: "9001",
    });
    assert.equal(config.LATCHKEY_TOKEN_PEPPER, pepper);
    assert.equal(config.LATCHKEY_TOKEN_PORT, 9001);
  });

  test("a short pepper is refused without being echoed", () => {
    assert.throws(
      () => loadConfig({ LATCHKEY_TOKEN_PEPPER: "too-short-pepper" }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /LATCHKEY_TOKEN_PEPPER/.test(err.message) &&
        !err.message.includes("too-short-pepper"),
    );
  });

  test("the pepper can come from a file", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "lk-token-config-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "pepper");
    writeFileSync(file, `${pepper}\n`);
    const config = loadConfig({
      LATCHKEY_DATABASE_URL: "postgres://db/latchkey",
      LATCHKEY_TOKEN_PEPPER_FILE: file,
    });
    assert.equal(config.LATCHKEY_TOKEN_PEPPER, pepper);
  });
});
