import { commonEnv, loadEnv, port, storageEnv, z } from "../../libs/config/index.ts";
import { createLocalKeyring, type KeyEncryptionKeys, type LocalKek } from "./keyring.ts";

/** Standard or URL-safe base64 of exactly 32 bytes (43 characters and optional padding). */
const kekPattern = /^[A-Za-z0-9+/_-]{43}=?$/;

const decodeKek = (value: string): Buffer => Buffer.from(value, "base64");

/**
 * `2:base64,1:base64` → KEKs. Commas or whitespace separate entries, so a file with one
 * entry per line works too. Messages name an entry by position, never by value.
 */
const oldKeks = z.string().transform((value, ctx): LocalKek[] => {
  const keks: LocalKek[] = [];
  const entries = value.split(/[\s,]+/).filter((entry) => entry !== "");
  for (const [index, entry] of entries.entries()) {
    const match = /^(\d{1,9}):(.+)$/.exec(entry);
    if (!match || !kekPattern.test(match[2] as string)) {
      ctx.addIssue({
        code: "custom",
        message: `entry ${index + 1} must look like <version>:<base64 of 32 bytes>`,
      });
      continue;
    }
    keks.push({ version: Number(match[1]), key: decodeKek(match[2] as string) });
  }
  return keks;
});

/** The vault's environment: commonEnv + storageEnv + its own variables. */
export const vaultEnv = {
  ...commonEnv,
  ...storageEnv,
  /** Port of the vault's Connect/gRPC server (`latchkey run vault`). */
  LATCHKEY_VAULT_PORT: port(7003),
  /**
   * Current key-encryption key: base64 of 32 random bytes (`openssl rand -base64 32`);
   * better given as LATCHKEY_VAULT_KEK_FILE. Unset in embedded mode, where the runtime
   * generates one in the data directory.
   */
  LATCHKEY_VAULT_KEK: z
    .string()
    .regex(kekPattern, "must be base64 of exactly 32 bytes")
    .transform(decodeKek)
    .optional(),
  /** Version number of LATCHKEY_VAULT_KEK, stored beside every data key it wraps. */
  LATCHKEY_VAULT_KEK_VERSION: z.coerce.number().int().min(1).default(1),
  /**
   * Earlier KEKs, still needed to decrypt rows they wrapped until RotateKeyEncryptionKey
   * re-wrapped them: `2:base64,1:base64`. Better given as LATCHKEY_VAULT_OLD_KEKS_FILE.
   */
  LATCHKEY_VAULT_OLD_KEKS: oldKeks.default([]),
  /** How long the gateway may keep resolved material before asking again. */
  LATCHKEY_VAULT_LEASE_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
} as const;

/** The parsed vault configuration. */
export type VaultConfig = ReturnType<typeof loadConfig>;

/** Parses and checks the vault's environment; throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv(vaultEnv, env);
}

/**
 * The keyring the configuration describes, or undefined when no KEK is configured (embedded
 * mode, where the runtime supplies one). Throws if the versions clash.
 */
export function keyringFromConfig(config: VaultConfig): KeyEncryptionKeys | undefined {
  if (!config.LATCHKEY_VAULT_KEK) return undefined;
  return createLocalKeyring(
    { version: config.LATCHKEY_VAULT_KEK_VERSION, key: config.LATCHKEY_VAULT_KEK },
    config.LATCHKEY_VAULT_OLD_KEKS,
  );
}
