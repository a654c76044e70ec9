import { commonEnv, loadEnv, millis, port, storageEnv } from "../../libs/config/index.ts";

/** Variables only the policy service reads. */
export const policyEnv = {
  /** Port of the policy service's Connect/gRPC/gRPC-Web listener when run on its own. */
  LATCHKEY_POLICY_PORT: port(7002),
  /**
   * How long a gateway may use a GetBundle answer without asking again (cache_ttl), in
   * milliseconds. Change events invalidate bundles sooner; this bounds staleness when an
   * event is missed.
   */
  LATCHKEY_POLICY_BUNDLE_TTL_MS: millis(30_000),
} as const;

/** The policy service's configuration. */
export type PolicyConfig = ReturnType<typeof loadConfig>;

/**
 * Reads the policy service's configuration from the environment (each variable may also be
 * given as NAME_FILE). Fails fast with every problem listed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadEnv({ ...commonEnv, ...storageEnv, ...policyEnv }, env);
}
