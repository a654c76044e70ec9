import { ConfigError, commonEnv, loadEnv, port, storageEnv, z } from "../../libs/config/index.ts";
import { minPepperLength } from "./secret-hash.ts";

/** Variables only the token service reads. */
export const tokenEnv = {
  /** Port of the token service's Connect/gRPC/gRPC-Web listener when run on its own. */
  LATCHKEY_TOKEN_PORT: port(7001),
  /**
   * HMAC-SHA-256 key for proxy token hashes at rest (at least 32 characters; prefer
   * LATCHKEY_TOKEN_PEPPER_FILE). Required with LATCHKEY_DATABASE_URL, where every replica
   * must share it; in embedded mode, when unset, the runtime generates one and keeps it in
   * LATCHKEY_DATA_DIR (cli/embedded-secrets.ts). Changing it invalidates every token.
   */
  LATCHKEY_TOKEN_PEPPER: z
    .string()
    .min(minPepperLength, `must be at least ${minPepperLength} characters`)
    .optional(),
} as const;

/** The token service's configuration. */
export type TokenConfig = ReturnType<typeof loadConfig>;

/**
 * Reads the token service's configuration from the environment (each variable may also be
 * given as NAME_FILE). Fails fast with every problem listed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadEnv({ ...commonEnv, ...storageEnv, ...tokenEnv }, env);
  // A generated pepper only works for one process with its own data directory; replicas
  // behind a shared PostgreSQL would each hash differently and refuse each other's tokens.
  if (config.LATCHKEY_DATABASE_URL && !config.LATCHKEY_TOKEN_PEPPER) {
    throw new ConfigError([
      "LATCHKEY_TOKEN_PEPPER: required when LATCHKEY_DATABASE_URL is set (or LATCHKEY_TOKEN_PEPPER_FILE)",
    ]);
  }
  return config;
}
