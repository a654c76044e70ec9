import { readFileSync } from "node:fs";
import { z } from "zod";

export { z };

/** Thrown when the environment is invalid; the message lists every problem at once. */
export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * Parses the `LATCHKEY_*` variables a component reads. Every variable may instead be given
 * as `NAME_FILE`, a path whose trimmed content is the value: the Kubernetes-secret way,
 * which keeps secrets out of `ps` and process listings. Fails fast listing every problem.
 */
export function loadEnv<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const problems: string[] = [];
  const input: Record<string, string | undefined> = {};
  for (const name of Object.keys(shape)) {
    const file = env[`${name}_FILE`];
    if (env[name] !== undefined && env[name] !== "") {
      input[name] = env[name];
    } else if (file) {
      try {
        input[name] = readFileSync(file, "utf8").trim();
      } catch (err) {
        problems.push(`${name}_FILE: cannot read ${file}: ${(err as Error).message}`);
      }
    }
  }
  const parsed = z.object(shape).safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // Secret values never go into the message: only the variable name and what is wrong.
      problems.push(`${issue.path.join(".")}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return parsed.data;
}

/** A TCP port, from a string. */
export const port = (fallback: number) =>
  z.coerce.number().int().min(0).max(65535).default(fallback);

/** A duration in milliseconds, from a string. */
export const millis = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** Variables every component reads. */
export const commonEnv = {
  /** pino log level. */
  LATCHKEY_LOG_LEVEL: z
    .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
    .default("info"),
  /** Address the component listens on. Plaintext h2c belongs on loopback only. */
  LATCHKEY_HOST: z.string().default("127.0.0.1"),
  /** Server certificate (PEM) path; with LATCHKEY_TLS_KEY_FILE turns TLS on. */
  LATCHKEY_TLS_CERT_FILE: z.string().optional(),
  /** Server private key (PEM) path. */
  LATCHKEY_TLS_KEY_FILE: z.string().optional(),
  /** CA bundle (PEM) path; when set, clients must present a certificate it signed (mTLS). */
  LATCHKEY_TLS_CA_FILE: z.string().optional(),
  /** Shared secret that identifies the gateway to the services (at least 32 characters). */
  LATCHKEY_GATEWAY_KEY: z.string().min(32, "must be at least 32 characters").optional(),
} as const;

/** Variables of components that keep state. */
export const storageEnv = {
  /** PostgreSQL URL. Unset: embedded PGlite in LATCHKEY_DATA_DIR. */
  LATCHKEY_DATABASE_URL: z.string().url().optional(),
  /** Data directory for embedded mode (PGlite files, generated keys). */
  LATCHKEY_DATA_DIR: z.string().default(".latchkey"),
  /** NATS URL with JetStream, e.g. nats://127.0.0.1:4222. Unset: in-process bus. */
  LATCHKEY_NATS_URL: z.string().optional(),
  /**
   * Prefix for NATS stream names and subjects, so several Latchkey installations (or test
   * runs) can share one NATS server without seeing each other's events. Empty by default.
   */
  LATCHKEY_NATS_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9_]*$/, "lower-case letters, digits, _")
    .default(""),
  /** Apply this component's migrations on start (cluster users may prefer a migrate job). */
  LATCHKEY_MIGRATE_ON_START: z
    .enum(["true", "false"])
    .default("true")
    .transform((v) => v === "true"),
  /** Bootstrap admin key (`lka_...`), registered with role admin on all tenants at start. */
  LATCHKEY_ADMIN_KEY: z.string().startsWith("lka_", "must start with lka_").optional(),
} as const;
