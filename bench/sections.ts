/**
 * Extra report sections beyond the proxy table: revocation propagation across gateway
 * processes and audit ingest from NATS into PostgreSQL. The report carries them as
 * `sections: ReportSection[]` (printed after the table, stored in the JSON); the harness
 * runs every provider of `extraSections` after the table and the paired runs (paired.ts),
 * while the targets are still up but idle.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { measureIngest } from "../services/audit/bench-ingest.ts";
import type { CpuPlan } from "./cpu-plan.ts";
import {
  BENCH_UPSTREAM,
  clusterSkipReason,
  createClusterStorage,
  type IssuedToken,
  issueTokens,
  provisionUpstream,
  tokenHeader,
} from "./latchkey.ts";
import { startCluster } from "./latchkey-cluster.ts";
import { percentile } from "./latency.ts";
import type { Upstream } from "./upstream.ts";

/** One extra block of the report: printed as `lines` under `title`, stored as `data` in the JSON. */
export interface ReportSection {
  /** Stable key in the JSON report, e.g. "revocation-propagation". */
  id: string;
  title: string;
  /** Human-readable lines printed after the main table (already formatted, no trailing newline). */
  lines: string[];
  /** Machine-readable figures for the JSON report; shape is owned by the section. */
  data: unknown;
}

/** What the harness hands an extra section. */
export interface SectionContext {
  upstream: Upstream;
  cpuPlan: CpuPlan;
  /** Scratch directory for this section; removed after the run. */
  tmpDir: string;
  quick: boolean;
}

/** A section the harness runs after the table. */
export interface SectionProvider {
  id: string;
  title: string;
  /** False when `--quick` leaves the section out unless `--sections` names it (time bound). */
  inQuick: boolean;
  /** Why the section cannot run here (printed like a skipped target); undefined when it can. */
  skipReason?(): string | undefined | Promise<string | undefined>;
  run(context: SectionContext): Promise<ReportSection>;
}

/** Inputs of the revocation-propagation measurement. */
export interface RevocationPropagationOptions {
  /** Base URLs of the gateway processes (each addressable on its own), e.g. http://127.0.0.1:PORT. */
  gateways: readonly string[];
  /** Path requested through each gateway with the token (a 200 before, a 401 after revocation). */
  path: string;
  /** One valid token per sample; each is revoked once. */
  tokens: readonly IssuedToken[];
  /** Revokes the token `name` through the control plane; resolves when RevokeToken has answered. */
  revoke(name: string): Promise<void>;
  /** How often each gateway is probed with the revoked token (ms). */
  probeIntervalMs: number;
  /** A sample that has not propagated after this long counts as a timeout (ms). */
  timeoutMs: number;
  /** Samples measured at once (each its own token); bounds the section's duration. */
  concurrency: number;
}

/** Figures of the revocation-propagation section (milliseconds). */
export interface RevocationPropagationData {
  samples: number;
  gateways: number;
  probeIntervalMs: number;
  concurrency: number;
  /** Time from the RevokeToken response until every gateway answered 401, per sample. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Samples still accepted by some gateway after timeoutMs. */
  timeouts: number;
}

/** Sends one request with `secret` to `gateway` + `path`; returns the status. */
async function probe(pool: Pool, path: string, secret: string): Promise<number> {
  const { statusCode, body } = await pool.request({
    path,
    method: "GET",
    headers: tokenHeader(secret),
  });
  await body.dump();
  return statusCode;
}

/**
 * Per sample: makes the token valid in every gateway's cache (a 200 through each), revokes
 * it, then probes every gateway every `probeIntervalMs` until each answers 401; the sample
 * is the time from the RevokeToken response until the last gateway refused. The figure is
 * therefore bounded below by the probe interval's granularity.
 */
export async function measureRevocationPropagation(
  options: RevocationPropagationOptions,
): Promise<RevocationPropagationData> {
  const pools = options.gateways.map(
    (url) => new Pool(url, { connections: options.concurrency + 2, pipelining: 1 }),
  );
  const times: number[] = [];
  let timeouts = 0;
  try {
    const sample = async (token: IssuedToken) => {
      for (const pool of pools) {
        const status = await probe(pool, options.path, token.secret);
        if (status !== 200) throw new Error(`token not accepted before revocation (${status})`);
      }
      await options.revoke(token.name);
      const revokedAt = performance.now();
      const deadline = revokedAt + options.timeoutMs;
      const refusedAfter = await Promise.all(
        pools.map(async (pool) => {
          for (;;) {
            const status = await probe(pool, options.path, token.secret);
            const at = performance.now();
            if (status === 401) return at - revokedAt;
            if (at > deadline) return Number.POSITIVE_INFINITY;
            await sleep(options.probeIntervalMs);
          }
        }),
      );
      const slowest = Math.max(...refusedAfter);
      if (Number.isFinite(slowest)) times.push(slowest);
      else timeouts++;
    };
    let next = 0;
    const worker = async () => {
      while (next < options.tokens.length) {
        const token = options.tokens[next++] as IssuedToken;
        await sample(token);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
  const sorted = times.sort((a, b) => a - b);
  return {
    samples: options.tokens.length,
    gateways: options.gateways.length,
    probeIntervalMs: options.probeIntervalMs,
    concurrency: options.concurrency,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    timeouts,
  };
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "-");

/**
 * Revocation propagation in cluster mode: two gateway processes on their own ports (so each
 * can be probed), the four services, PostgreSQL and NATS. A revoke commits the token row and
 * its change event in one transaction; the token service's outbox relay publishes the event
 * to NATS and every gateway drops the cached verdict on receipt.
 */
export const revocationSection: SectionProvider = {
  id: "revocation-propagation",
  title: "Revocation propagation (cluster mode, 2 gateway processes on their own ports)",
  inQuick: true,
  skipReason: clusterSkipReason,
  async run(context) {
    const samples = context.quick ? 10 : 200;
    // Not pinned: no load generator runs now, and seven processes starting on one core
    // would only make the section slower (it is part of --quick).
    const installation = await startCluster({ kind: "own-ports", count: 2 }, { cores: undefined });
    try {
      await provisionUpstream(installation.admin, context.upstream);
      const tokens = await issueTokens(installation.admin, samples);
      const data = await measureRevocationPropagation({
        gateways: installation.gatewayUrls,
        path: `/${BENCH_UPSTREAM}/json`,
        tokens,
        revoke: async (name) => {
          await installation.admin.token.revokeToken({ name, reason: "bench" });
        },
        probeIntervalMs: 2,
        timeoutMs: 5_000,
        concurrency: 4,
      });
      return {
        id: this.id,
        title: this.title,
        lines: [
          `${data.samples} tokens revoked (${data.concurrency} at a time); each was cached as valid in both gateways first,`,
          `then both were probed every ${data.probeIntervalMs} ms until they answered 401.`,
          `RevokeToken response -> refused by every gateway: p50 ${ms(data.p50Ms)} ms, p99 ${ms(data.p99Ms)} ms, max ${ms(data.maxMs)} ms` +
            (data.timeouts > 0 ? `; ${data.timeouts} not refused within 5 s` : ""),
        ],
        data,
      };
    } finally {
      await installation.stop();
    }
  },
};

/**
 * Audit ingest: services/audit/bench-ingest.ts's measureIngest on a fresh PostgreSQL
 * database and NATS namespace: the audit component consuming the audit stream and writing
 * to PostgreSQL, first draining a backlog (its capacity), then while the same number of
 * events is published (live rate and the lag after the burst).
 */
export const auditIngestSection: SectionProvider = {
  id: "audit-ingest",
  title: "Audit ingest (NATS JetStream -> audit service -> PostgreSQL)",
  // Two phases of publishing and draining: ~10 s even at 10,000 events, too much for CI.
  inQuick: false,
  skipReason: clusterSkipReason,
  async run(context) {
    const count = context.quick ? 10_000 : 100_000;
    const storage = await createClusterStorage();
    try {
      const data = await measureIngest({
        natsUrl: storage.natsUrl,
        databaseUrl: storage.databaseUrl,
        count,
        timeoutMs: 300_000,
      });
      return {
        id: this.id,
        title: this.title,
        lines: [
          `${count} events per phase, audit component in the harness process (unpinned), PostgreSQL and NATS local.`,
          `backlog drain (ingest capacity): ${data.backlogIngestPerSecond} events/s`,
          `live burst (publish ${count} while ingesting): ${data.liveIngestPerSecond} events/s end to end; ` +
            `last row stored ${data.liveLagMs} ms after the last publish; per-event lag p50 ${data.eventLagP50Ms} ms, p99 ${data.eventLagP99Ms} ms`,
          `publish rate into JetStream (ingest idle): ${data.publishPerSecond} events/s; ` +
            `${data.batches} INSERT batches, ${data.duplicates} duplicates, ${data.malformed} malformed`,
        ],
        data,
      };
    } finally {
      await storage.drop();
    }
  },
};

/** Sections run after the table, in order (`--sections` selects among them). */
export const extraSections: SectionProvider[] = [revocationSection, auditIngestSection];
