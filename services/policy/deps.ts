import type { Db } from "../../libs/db/types.ts";
import type { Logger } from "../../libs/log/index.ts";
import type { PolicyCache } from "./policy-cache.ts";

/** What the PolicyService handlers need; built once by createPolicyComponent. */
export interface PolicyServiceDeps {
  db: Db;
  /** Compiled rule sets per tenant, for Evaluate and BatchEvaluate. */
  policies: PolicyCache;
  /** The current time; tests pin it. */
  clock: () => Date;
  /** Called after a commit that enqueued change events, so they go out at once. */
  kickRelay: () => void;
  /** How long a gateway may use a bundle without asking again (GetBundle cache_ttl). */
  bundleTtlMs: number;
  log: Logger;
}
