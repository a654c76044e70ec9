import type { Queryable } from "../../libs/db/types.ts";
import { type CompiledPolicy, compilePolicy } from "../../libs/policy-engine/index.ts";
import { rulesFromJson } from "./policy-message.ts";
import { currentPolicyVersion, getPolicySet } from "./store.ts";

/** Compiled rule sets by tenant, so Evaluate compiles each version once. */
export interface PolicyCache {
  /** The tenant's current rule set, compiled (version 0, denying everything, when none). */
  current(q: Queryable, tenant: string): Promise<CompiledPolicy>;
}

/**
 * Creates a cache holding the latest compiled version of up to `maxTenants` tenants (least
 * recently used evicted). Each call still reads the current version number (one indexed
 * query), so a PutPolicySet through another replica takes effect on the next evaluation;
 * versions never change once written, which makes the cached compilation safe to reuse.
 */
export function createPolicyCache(options: { maxTenants?: number } = {}): PolicyCache {
  const maxTenants = options.maxTenants ?? 1000;
  const byTenant = new Map<string, CompiledPolicy>();
  return {
    async current(q, tenant) {
      const version = await currentPolicyVersion(q, tenant);
      const cached = byTenant.get(tenant);
      byTenant.delete(tenant);
      if (cached !== undefined && cached.version === version) {
        byTenant.set(tenant, cached);
        return cached;
      }
      const row = version === 0 ? undefined : await getPolicySet(q, tenant, version);
      const compiled = compilePolicy({
        version: row?.version ?? 0,
        rules: row === undefined ? [] : rulesFromJson(row.rules),
      });
      byTenant.set(tenant, compiled);
      if (byTenant.size > maxTenants) {
        const oldest = byTenant.keys().next().value;
        if (oldest !== undefined) byTenant.delete(oldest);
      }
      return compiled;
    },
  };
}
