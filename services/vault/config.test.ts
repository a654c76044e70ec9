import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError } from "../../libs/config/index.ts";
import { keyringFromConfig, loadConfig } from "./config.ts";
import { open, seal } from "./envelope.ts";
import { createLocalKeyring } from "./keyring.ts";

const key = (): string => randomBytes(32).toString("base64");
const slot = { tenant: "acme", credentialId: "c", version: 1 };

describe("vault loadConfig", () => {
  test("defaults", () => {
    const config = loadConfig({});
    assert.equal(config.LATCHKEY_VAULT_PORT, 7003);
    assert.equal(config.LATCHKEY_VAULT_KEK, undefined);
    assert.equal(config.LATCHKEY_VAULT_KEK_VERSION, 1);
    assert.deepEqual(config.LATCHKEY_VAULT_OLD_KEKS, []);
    assert.equal(config.LATCHKEY_VAULT_LEASE_SECONDS, 300);
    assert.equal(keyringFromConfig(config), undefined);
  });

  test("builds a keyring that reads rows wrapped by the old KEKs", async () => {
    const [k1, k2, k3] = [key(), key(), key()];
    const old = createLocalKeyring({ version: 1, key: Buffer.from(k1, "base64") });
    const sealed = await seal(old, slot, Buffer.from("material"));
    const config = loadConfig({
      LATCHKEY_VAULT_KEK: k3,
      LATCHKEY_VAULT_KEK_VERSION: "3",
      LATCHKEY_VAULT_OLD_KEKS: `2:${k2},\n1:${k1}\n`,
    });
    const keys = keyringFromConfig(config);
    assert.ok(keys);
    assert.equal(keys.current.version, 3);
    assert.equal(Buffer.from(await open(keys, slot, sealed)).toString(), "material");
  });

  test("accepts URL-safe base64", () => {
    const config = loadConfig({ LATCHKEY_VAULT_KEK: randomBytes(32).toString("base64url") });
    assert.equal(config.LATCHKEY_VAULT_KEK?.length, 32);
  });

  test("refuses malformed keys without echoing them", () => {
    const short = randomBytes(16).toString("base64");
    const bad = `9:${short}`;
    assert.throws(
      () => loadConfig({ LATCHKEY_VAULT_KEK: short, LATCHKEY_VAULT_OLD_KEKS: `${bad},garbage` }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /LATCHKEY_VAULT_KEK: must be base64 of exactly 32 bytes/);
        assert.match(err.message, /entry 1 must look like/);
        assert.match(err.message, /entry 2 must look like/);
        assert.ok(!err.message.includes(short));
        return true;
      },
    );
  });

  test("a KEK version given twice is refused when the keyring is built", () => {
    const config = loadConfig({
      LATCHKEY_VAULT_KEK: key(),
      LATCHKEY_VAULT_OLD_KEKS: `1:${key()}`,
    });
    assert.throws(() => keyringFromConfig(config), /version 1 is given twice/);
  });
});
