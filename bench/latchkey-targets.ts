/**
 * The Latchkey rows of the benchmark table.
 *
 * Each entry is a `Target` (see target.ts). The harness starts it after the upstream, checks
 * every route once through it (200 and the expected body, i.e. the upstream credential was
 * injected), warms it up (so token, bundle and credential caches are warm), samples the RSS
 * of the gateway process(es) through `pids()`, and measures it interleaved with the baseline
 * rows. Requests go to `<gateway>/bench/<route path>` with `authorization: Bearer <token>`:
 * the tenant's upstream `bench` points at the harness's upstream with its credential in the
 * vault (bench/latchkey.ts provisions it through the admin API).
 *
 * Every Latchkey process is pinned to the server core(s), like the other proxies; in cluster
 * mode PostgreSQL and NATS are system services and run wherever the kernel puts them.
 * BENCH_CPU_PROF=1 profiles the gateway process(es) (see gatewayNodeArgs).
 */

import {
  BENCH_UPSTREAM,
  clusterSkipReason,
  issueTokens,
  provisionUpstream,
  tokenHeader,
} from "./latchkey.ts";
import {
  embeddedDataDir,
  type Installation,
  startCluster,
  startEmbedded,
} from "./latchkey-cluster.ts";
import type { RunningTarget, Target, TargetContext } from "./target.ts";

/** Tokens in the per-request rotation (full mode); inlined into the wrk script. */
const ROTATION_TOKENS = 2000;
/** The same in --quick mode (only if the row is selected there). */
const ROTATION_TOKENS_QUICK = 200;
/** Open-loop rate of the cold-verify row (see RunningTarget.openRate). */
const COLD_VERIFY_OPEN_RATE = 250;

/** Provisions the installation for the upstream and returns the running target. */
async function running(
  installation: Installation,
  context: TargetContext,
  tokens: number,
): Promise<RunningTarget> {
  try {
    await provisionUpstream(installation.admin, context.upstream);
    const issued = await issueTokens(installation.admin, tokens);
    const first = issued[0];
    if (first === undefined) throw new Error("no token issued");
    const baseUrl = `${installation.gatewayUrls[0]}/${BENCH_UPSTREAM}`;
    return {
      baseUrl,
      headers: tokenHeader(first.secret),
      ...(tokens > 1 && { headerRotation: issued.map((t) => tokenHeader(t.secret)) }),
      pids: () => installation.gatewayPids,
      stop: () => installation.stop(),
    };
  } catch (error) {
    await installation.stop();
    throw error;
  }
}

/** Names of the Latchkey rows (also accepted by `--targets`). */
export const LATCHKEY_EMBEDDED = "latchkey-embedded";
export const LATCHKEY_CLUSTER_1GW = "latchkey-cluster-1gw";
export const LATCHKEY_CLUSTER_2GW = "latchkey-cluster-2gw";
export const LATCHKEY_TOKEN_PER_REQUEST = "latchkey-token-per-request";

/** `latchkey run all`: one process, PGlite and the in-process bus, caches warm. */
export const embeddedTarget: Target = {
  name: LATCHKEY_EMBEDDED,
  description:
    "client -> latchkey run all (1 process: gateway + services in-process, PGlite, in-process bus; caches warm) -> upstream",
  async start(context) {
    const installation = await startEmbedded(embeddedDataDir(context.tmpDir), {
      cores: context.serverCores,
    });
    return running(installation, context, 1);
  },
};

/** Cluster mode, one gateway process; pids() is that process only. */
export const cluster1Target: Target = {
  name: LATCHKEY_CLUSTER_1GW,
  description:
    "client -> latchkey run gateway (1 process; token/policy/vault/audit as 4 more processes on PostgreSQL + NATS; caches warm) -> upstream",
  skipReason: clusterSkipReason,
  async start(context) {
    const installation = await startCluster(
      { kind: "shared-port", count: 1 },
      { cores: context.serverCores },
    );
    return running(installation, context, 1);
  },
};

/** Cluster mode, two gateway processes sharing one port (SO_REUSEPORT); pids() both. */
export const cluster2Target: Target = {
  name: LATCHKEY_CLUSTER_2GW,
  description:
    "as cluster-1gw with 2 gateway processes on one port (LATCHKEY_GATEWAY_REUSE_PORT=true); all on the same server core(s)",
  skipReason: clusterSkipReason,
  async start(context) {
    const installation = await startCluster(
      { kind: "shared-port", count: 2 },
      { cores: context.serverCores },
    );
    return running(installation, context, 1);
  },
};

/**
 * Embedded, a different valid token on every request (round-robin over 2,000) and the
 * gateway's verify cache off (LATCHKEY_GATEWAY_VERIFY_CACHE_MAX_MS=0: a verdict's cache life
 * is min(cache_ttl, 0) = 0 and verify.ts caches only when it is > 0), so every request calls
 * VerifyToken (in-process: HMAC of the secret plus a token lookup in PGlite). Bundle and
 * credential caches stay warm.
 */
export const tokenPerRequestTarget: Target = {
  name: LATCHKEY_TOKEN_PER_REQUEST,
  description:
    "as embedded, each request a different token (2,000 round-robin) and the verify cache off: VerifyToken on every request",
  async start(context) {
    const installation = await startEmbedded(embeddedDataDir(context.tmpDir), {
      cores: context.serverCores,
      gatewayEnv: { LATCHKEY_GATEWAY_VERIFY_CACHE_MAX_MS: "0" },
    });
    const target = await running(
      installation,
      context,
      context.quick ? ROTATION_TOKENS_QUICK : ROTATION_TOKENS,
    );
    // Its closed-loop capacity on the 2-core machine is ~500 req/s: at the table's
    // 1,000 req/s the open loop only measured a growing queue and timed out.
    return { ...target, openRate: COLD_VERIFY_OPEN_RATE };
  },
};

/** Latchkey targets measured after the baseline rows (direct, nginx, bare Node). */
export const latchkeyTargets: Target[] = [
  embeddedTarget,
  cluster1Target,
  cluster2Target,
  tokenPerRequestTarget,
];

/** The rows `--quick` runs by default (CI): the embedded row only; the cluster rows cost ~10 s each to start. */
export const quickLatchkeyTargets: readonly string[] = [LATCHKEY_EMBEDDED];
