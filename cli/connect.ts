import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createClientTransport } from "../libs/rpc/index.ts";

/**
 * How admin commands find the services: one URL for `latchkey run all`
 * (LATCHKEY_URL, default http://127.0.0.1:7000), or a URL per service in a cluster
 * (LATCHKEY_TOKEN_URL, LATCHKEY_POLICY_URL, LATCHKEY_VAULT_URL, LATCHKEY_AUDIT_URL).
 */
export function serviceUrl(
  service: "token" | "policy" | "vault" | "audit",
  env = process.env,
): string {
  return (
    env[`LATCHKEY_${service.toUpperCase()}_URL`] ?? env.LATCHKEY_URL ?? "http://127.0.0.1:7000"
  );
}

/**
 * The admin key for CLI calls: LATCHKEY_ADMIN_KEY, else the file LATCHKEY_ADMIN_KEY_FILE,
 * else the key embedded mode wrote to `<data dir>/admin-key` on first start.
 */
export function adminKey(env = process.env): string {
  if (env.LATCHKEY_ADMIN_KEY) return env.LATCHKEY_ADMIN_KEY;
  const file =
    env.LATCHKEY_ADMIN_KEY_FILE ?? join(env.LATCHKEY_DATA_DIR ?? ".latchkey", "admin-key");
  if (!existsSync(file)) {
    throw new Error(
      `no admin key: set LATCHKEY_ADMIN_KEY or LATCHKEY_ADMIN_KEY_FILE (looked for ${file})`,
    );
  }
  return readFileSync(file, "utf8").trim();
}

/** A generated Connect client for one service, authenticated with the admin key. */
export function adminClient<S extends DescService>(
  service: S,
  name: "token" | "policy" | "vault" | "audit",
  env = process.env,
): Client<S> {
  const transport = createClientTransport({
    baseUrl: serviceUrl(name, env),
    credential: adminKey(env),
    tls: env.LATCHKEY_TLS_CA_FILE
      ? {
          caFile: env.LATCHKEY_TLS_CA_FILE,
          certFile: env.LATCHKEY_TLS_CLIENT_CERT_FILE,
          keyFile: env.LATCHKEY_TLS_CLIENT_KEY_FILE,
        }
      : undefined,
  });
  return createClient(service, transport);
}
