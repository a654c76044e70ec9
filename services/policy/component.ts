import type { Bus } from "../../libs/bus/types.ts";
import type { Db } from "../../libs/db/types.ts";
import { PolicyService } from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { createOutboxRelay } from "../../libs/outbox/index.ts";
import type { Component } from "../../libs/rpc/types.ts";
import { createPolicyCache } from "./policy-cache.ts";
import { createPolicyRoutes } from "./routes.ts";

export { migrations } from "./store.ts";

/** Default GetBundle cache_ttl: change events invalidate bundles sooner. */
export const defaultBundleTtlMs = 30_000;

/** Dependencies of the policy component. */
export interface PolicyComponentOptions {
  /** Database with the `policy` schema migrated (see `migrations`). */
  db: Db;
  /** Where the outbox relay publishes change events. */
  bus: Bus;
  log: Logger;
  /** GetBundle's cache_ttl in milliseconds (LATCHKEY_POLICY_BUNDLE_TTL_MS; default 30 s). */
  bundleTtlMs?: number;
  /** Current time; defaults to the system clock. */
  clock?: () => Date;
}

/**
 * Creates the policy component: PolicyService routes plus the outbox relay that publishes
 * upstream and policy-set change events (`latchkey.change.{tenant}.upstream|policy`) after
 * each commit.
 */
export function createPolicyComponent(options: PolicyComponentOptions): Component {
  const log = options.log;
  const relay = createOutboxRelay({ db: options.db, schema: "policy", bus: options.bus, log });
  const routes = createPolicyRoutes({
    db: options.db,
    policies: createPolicyCache(),
    clock: options.clock ?? (() => new Date()),
    kickRelay: () => relay.kick(),
    bundleTtlMs: options.bundleTtlMs ?? defaultBundleTtlMs,
    log,
  });
  return {
    name: "policy",
    services: [PolicyService],
    routes,
    async start() {
      relay.start();
    },
    async stop() {
      await relay.stop();
    },
  };
}
