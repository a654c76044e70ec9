import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateAdminKey } from "../libs/auth/index.ts";

/** Secrets embedded mode needs, taken from the environment or kept in the data directory. */
export interface EmbeddedSecrets {
  adminKey: string;
  /** True when this start generated the admin key (first start): it is printed once. */
  adminKeyCreated: boolean;
  tokenPepper: string;
  /** base64 of 32 bytes. */
  vaultKek: string;
  /** Only used inside this process between the gateway and the services. */
  gatewayKey: string;
}

/**
 * Reads a secret from the environment, else from `<dataDir>/<file>`, else generates it and
 * writes it there with mode 0600. Embedded mode must keep the token pepper and the vault
 * key across restarts: losing either makes every token or credential unusable.
 */
function persisted(
  dataDir: string,
  file: string,
  fromEnv: string | undefined,
  generate: () => string,
) {
  if (fromEnv) return { value: fromEnv, created: false };
  const path = join(dataDir, file);
  if (existsSync(path)) return { value: readFileSync(path, "utf8").trim(), created: false };
  const value = generate();
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return { value, created: true };
}

/** Loads or creates the embedded-mode secrets under `dataDir`. */
export function loadEmbeddedSecrets(
  dataDir: string,
  env: { adminKey?: string; tokenPepper?: string; vaultKek?: string; gatewayKey?: string },
): EmbeddedSecrets {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const admin = persisted(dataDir, "admin-key", env.adminKey, generateAdminKey);
  return {
    adminKey: admin.value,
    adminKeyCreated: admin.created,
    tokenPepper: persisted(dataDir, "token-pepper", env.tokenPepper, () =>
      randomBytes(32).toString("base64url"),
    ).value,
    vaultKek: persisted(dataDir, "vault-kek", env.vaultKek, () =>
      randomBytes(32).toString("base64"),
    ).value,
    gatewayKey: env.gatewayKey ?? randomBytes(32).toString("base64url"),
  };
}
