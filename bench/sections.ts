/**
 * Extra report sections beyond the proxy table, and the hooks for the ones that need the
 * Latchkey gateway (issue 3, later parts). The report format already carries
 * `sections: ReportSection[]`, so adding one is a matter of appending a provider to
 * `extraSections`; the harness runs them after the table, with every target still stopped.
 */
import type { CpuPlan } from "./cpu-plan.ts";
import type { RunningTarget } from "./target.ts";
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
  /** Why the section cannot run here (printed like a skipped target); undefined when it can. */
  skipReason?(): string | undefined | Promise<string | undefined>;
  run(context: SectionContext): Promise<ReportSection>;
}

/**
 * Sections run after the table, in order. EMPTY until the gateway exists: revocation
 * propagation and audit ingest will be added here as providers that call the two hooks below.
 */
export const extraSections: SectionProvider[] = [];

/** Inputs of the revocation-propagation measurement. */
export interface RevocationPropagationOptions {
  /** The gateway(s) under test; with several gateway processes, every one must stop accepting the token. */
  gateways: RunningTarget[];
  /** A valid proxy token that the measurement will revoke. */
  token: string;
  /** Revokes `token` through the control plane; resolves when the control plane has acknowledged it. */
  revoke(token: string): Promise<void>;
  /** How often each gateway is probed with the revoked token (ms). */
  probeIntervalMs: number;
  /** Give up (and report a failure) after this long (ms). */
  timeoutMs: number;
  /** Number of tokens revoked one after another; the section reports p50/p99/max over them. */
  samples: number;
}

/**
 * Hook (not implemented, not called yet): time from `revoke()` resolving until every gateway
 * answers 401/403 for the token, per sample. Needs the gateway and its control plane.
 */
export async function measureRevocationPropagation(
  _options: RevocationPropagationOptions,
): Promise<ReportSection> {
  throw new Error(
    "revocation propagation needs the Latchkey gateway; add it to extraSections once it exists",
  );
}

/** Inputs of the audit-ingest measurement. */
export interface AuditIngestOptions {
  /** The gateway the requests go through; every request must yield one audit record. */
  gateway: RunningTarget;
  /** Number of proxied requests to send (bounded). */
  requests: number;
  /** Requests per second to send them at (open loop). */
  rate: number;
  /** Returns how many audit records for this run the audit store holds now. */
  countAuditRecords(): Promise<number>;
  /** Give up after this long once the last request was answered (ms). */
  timeoutMs: number;
}

/**
 * Hook (not implemented, not called yet): sustained audit ingest rate and lag (time from the
 * last proxied response until its record is queryable), and whether any record was lost.
 * Needs the gateway, NATS and the audit store.
 */
export async function measureAuditIngest(_options: AuditIngestOptions): Promise<ReportSection> {
  throw new Error(
    "audit ingest needs the Latchkey gateway; add it to extraSections once it exists",
  );
}
