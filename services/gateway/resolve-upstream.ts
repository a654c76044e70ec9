import type { Client } from "@connectrpc/connect";
import type {
  AuditMode,
  GetBundleResponse,
  PolicyService,
  Upstream,
} from "../../libs/gen/latchkey/policy/v1/policy_pb.js";
import type { Logger } from "../../libs/log/index.ts";
import { type CompiledPolicy, compilePolicy } from "../../libs/policy-engine/index.ts";
import { type CacheEntry, createBoundedCache, createSingleFlight } from "./cache.ts";
import { ttlMs } from "./durations.ts";
import { errorName } from "./error-name.ts";
import { type Refusal, refusals } from "./refusal.ts";

/** One upstream of a tenant, prepared once per bundle for the request path. */
export interface UpstreamTarget {
  readonly kind: "upstream";
  readonly slug: string;
  /** `scheme://host[:port]`, normalised; from configuration only. */
  readonly origin: string;
  /** Prefix before the client's path, without a trailing `/` ("" for none). */
  readonly basePath: string;
  /** Vault credential name, "" to forward without one. */
  readonly credential: string;
  readonly requestTimeoutMs: number;
  readonly maxRequestBodyBytes: number;
  readonly forwardCookies: boolean;
  readonly auditMode: AuditMode;
  /** What policy sees as `upstream`. */
  readonly policyUpstream: { slug: string; origin: string };
  /** The bundle it came from (its policy decides requests to it). */
  readonly bundle: TenantBundle;
}

/** A tenant's upstreams and compiled policy, as one GetBundle returned them. */
export interface TenantBundle {
  readonly tenant: string;
  readonly upstreams: ReadonlyMap<string, UpstreamTarget>;
  readonly policy: CompiledPolicy;
  /** Set when the bundle is served past its TTL because GetBundle failed. */
  stale: boolean;
}

/** Options for createUpstreamResolver. */
export interface UpstreamResolverOptions {
  policyClient: Client<typeof PolicyService>;
  log: Logger;
  /** Upper bound on a bundle's cache life, whatever GetBundle's cache_ttl says. */
  maxTtlMs: number;
  /** Most tenants cached at once. */
  maxEntries: number;
  /** How long past its TTL a bundle may stand in while GetBundle fails (0: never). */
  staleIfErrorMs: number;
  now?: () => number;
}

/** Step 3 of the request path: find the upstream in the token's tenant. */
export interface UpstreamResolver {
  /** The upstream `slug` of `tenant`, or the refusal (unknown slugs are 403, like denials). */
  resolve(
    tenant: string,
    slug: string,
  ): UpstreamTarget | Refusal | Promise<UpstreamTarget | Refusal>;
  /** Drops the tenant's bundle (an upstream or its policy set changed). */
  invalidateTenant(tenant: string): void;
  clear(): void;
}

/** Contract defaults (policy.proto): 30 s to response headers, 10 MiB of request body. */
const defaultRequestTimeoutMs = 30_000;
const defaultMaxRequestBodyBytes = 10 * 1024 * 1024;
const retryAfterErrorMs = 1_000;

/**
 * Creates the resolver: one GetBundle per tenant, compiled once (policy globs and CEL
 * planned, upstream settings normalised), cached for min(cache_ttl, maxTtlMs), dropped by
 * change events, with single-flight loading.
 */
export function createUpstreamResolver(options: UpstreamResolverOptions): UpstreamResolver {
  const { policyClient, log, maxTtlMs, staleIfErrorMs } = options;
  const now = options.now ?? Date.now;
  const bundles = createBoundedCache<string, TenantBundle>({ maxEntries: options.maxEntries });
  const flights = createSingleFlight<string, TenantBundle | Refusal>();
  // Per-tenant invalidation counters plus one for clear(); the map is never emptied, so a
  // counter can never fall back to a value an in-flight load already saw.
  const epochs = new Map<string, number>();
  let generation = 0;
  const epochOf = (tenant: string) => `${generation}.${epochs.get(tenant) ?? 0}`;

  async function load(tenant: string, previous: CacheEntry<TenantBundle> | undefined) {
    const startEpoch = epochOf(tenant);
    let bundle: TenantBundle;
    let ttl: number;
    try {
      const response = await policyClient.getBundle({ parent: `tenants/${tenant}` });
      bundle = compileBundle(tenant, response, log);
      ttl = Math.min(ttlMs(response.cacheTtl), maxTtlMs);
    } catch (err) {
      const at = now();
      // A bundle invalidated since (a policy or upstream change) must not come back as stale.
      if (previous !== undefined && epochOf(tenant) === startEpoch && at < previous.staleUntil) {
        log.warn({ tenant, err: errorName(err) }, "policy bundle unavailable; using a stale one");
        previous.value.stale = true;
        bundles.set(tenant, {
          value: previous.value,
          freshUntil: Math.min(at + retryAfterErrorMs, previous.staleUntil),
          staleUntil: previous.staleUntil,
        });
        return previous.value;
      }
      log.warn({ tenant, err: errorName(err) }, "policy bundle unavailable");
      return refusals.policyUnavailable;
    }
    if (ttl > 0 && epochOf(tenant) === startEpoch) {
      const freshUntil = now() + ttl;
      bundles.set(tenant, { value: bundle, freshUntil, staleUntil: freshUntil + staleIfErrorMs });
    }
    return bundle;
  }

  function pick(bundle: TenantBundle | Refusal, slug: string): UpstreamTarget | Refusal {
    if ("kind" in bundle) return bundle;
    return bundle.upstreams.get(slug) ?? refusals.upstreamUnknown;
  }

  return {
    resolve(tenant, slug) {
      const entry = bundles.get(tenant);
      if (entry !== undefined && now() < entry.freshUntil) return pick(entry.value, slug);
      // Keyed by epoch: a request after an invalidation never joins an older load.
      return flights
        .run(`${epochOf(tenant)} ${tenant}`, () => load(tenant, entry))
        .then((bundle) => pick(bundle, slug));
    },
    invalidateTenant(tenant) {
      epochs.set(tenant, (epochs.get(tenant) ?? 0) + 1);
      bundles.delete(tenant);
    },
    clear() {
      generation++;
      bundles.clear();
    },
  };
}

/**
 * Prepares a GetBundle answer for the request path. Throws when the policy set does not
 * compile (the caller treats it as the policy service failing: stale bundle or 503).
 */
export function compileBundle(
  tenant: string,
  response: GetBundleResponse,
  log: Logger,
): TenantBundle {
  const policy = compilePolicy(response.policySet ?? { version: 0, rules: [] });
  const upstreams = new Map<string, UpstreamTarget>();
  const bundle: TenantBundle = { tenant, upstreams, policy, stale: false };
  const namePrefix = `tenants/${tenant}/upstreams/`;
  const credentialPrefix = `tenants/${tenant}/credentials/`;
  for (const upstream of response.upstreams) {
    const target = toTarget(upstream, bundle, namePrefix, credentialPrefix);
    if (typeof target === "string") {
      // Defence in depth: the policy service validates upstreams on write.
      log.error({ tenant, upstream: upstream.name, problem: target }, "upstream ignored");
      continue;
    }
    upstreams.set(target.slug, target);
  }
  return bundle;
}

function toTarget(
  upstream: Upstream,
  bundle: TenantBundle,
  namePrefix: string,
  credentialPrefix: string,
): UpstreamTarget | string {
  if (!upstream.name.startsWith(namePrefix)) return "belongs to another tenant";
  const slug = upstream.name.slice(namePrefix.length);
  let origin: string;
  try {
    const url = new URL(upstream.origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return "origin is not http(s)";
    if (url.username !== "" || url.password !== "") return "origin carries user info";
    origin = url.origin;
  } catch {
    return "origin is not a URL";
  }
  // A credential is resolved with the gateway's identity, which may read any tenant's:
  // the tenant boundary is checked here, not left to configuration.
  if (upstream.credential !== "" && !upstream.credential.startsWith(credentialPrefix)) {
    return "credential belongs to another tenant";
  }
  const basePath = upstream.basePath.endsWith("/")
    ? upstream.basePath.slice(0, -1)
    : upstream.basePath;
  if (basePath !== "" && !basePath.startsWith("/")) return "base path does not start with /";
  const timeout = ttlMs(upstream.requestTimeout);
  const maxBody = Number(upstream.maxRequestBodyBytes);
  return {
    kind: "upstream",
    slug,
    origin,
    basePath,
    credential: upstream.credential,
    requestTimeoutMs: timeout > 0 ? timeout : defaultRequestTimeoutMs,
    maxRequestBodyBytes: maxBody > 0 ? maxBody : defaultMaxRequestBodyBytes,
    forwardCookies: upstream.forwardCookies,
    auditMode: upstream.auditMode,
    policyUpstream: { slug, origin },
    bundle,
  };
}
