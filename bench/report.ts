/**
 * The benchmark report: raw per-round measurements in, one table (printed) and one JSON file
 * (bench/results/<timestamp>.json) out, both carrying the same figures.
 *
 * Each figure in the table is the median over rounds of that figure, taken independently
 * (the median req/s and the median p99 may come from different rounds). Ratios and added
 * latencies are computed from those medians.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchConfig } from "./args.ts";
import type { CpuPlan } from "./cpu-plan.ts";
import type { CpuSpent, ForeignLoad } from "./cpu-usage.ts";
import { median } from "./latency.ts";
import type { ClosedLoopResult, OpenLoopResult } from "./load-spec.ts";
import type { MachineInfo } from "./machine.ts";
import type { RouteName } from "./routes.ts";
import type { ReportSection } from "./sections.ts";
import type { StallReading } from "./stalls.ts";

/** One timed run as it happened. */
export interface Measurement {
  round: number;
  target: string;
  route: RouteName;
  kind: "closed" | "open";
  closed?: ClosedLoopResult;
  /** CPU spent while the closed loop ran (closed runs only). */
  cpu?: CpuSpent;
  open?: OpenLoopResult;
  /** Peak RSS of the target's processes during this run (KiB); absent for the direct target. */
  peakRssKiB?: number;
  /** CPU used by processes other than the harness's during this run (a lower bound). */
  foreignCpu?: ForeignLoad;
  /** Set when the run itself failed (the generator crashed); the figures are then absent. */
  failure?: string;
}

/** One line of the table: a target on a route, medians over rounds. */
export interface ResultRow {
  target: string;
  route: RouteName;
  closed?: {
    tool: string;
    rps: number;
    p50Ms: number;
    p99Ms: number;
    /** CPU time of the target's own processes per request, µs (absent for direct). */
    targetCpuUs?: number;
    /**
     * The target's CPU time divided by the upstream's over the same run (median over runs):
     * steadier than µs when the machine's speed changes between runs (see
     * CpuSpent.upstreamS). Absent for direct.
     */
    cpuVsUpstream?: number;
    /** Busy time of the whole machine per request, µs: everything a request cost. */
    machineCpuUs?: number;
  };
  open?: {
    rate: number;
    p50Ms: number;
    p99Ms: number;
    p999Ms: number;
    /**
     * True when the open-loop rate is above 70% of this row's closed-loop throughput: the
     * latency then mostly measures queueing, not the proxy's per-request cost.
     */
    nearSaturation: boolean;
  };
  ratios: {
    /** Closed-loop req/s divided by the direct row's (how much of the limit the target keeps). */
    rpsVsDirect?: number;
    /** Closed-loop req/s divided by the bare Node proxy's. */
    rpsVsBare?: number;
    /** Closed-loop req/s divided by nginx's. */
    rpsVsNginx?: number;
    /** Open-loop latency added over the direct row, milliseconds. */
    addedP50Ms?: number;
    addedP99Ms?: number;
    addedP999Ms?: number;
  };
  memory: { idleKiB?: number; peakKiB?: number };
  /** Errors summed over all runs of this row (transport errors, non-2xx answers, timeouts). */
  errors: number;
  /** Runs of this row whose generator failed outright. */
  failedRuns: number;
  /**
   * Highest CPU (in cores) other processes used, plus hypervisor steal, during any run of this
   * row; 0 on a quiet machine.
   */
  maxForeignCores: number;
}

/** The whole report, as written to JSON. `sections` holds later parts (revocation, audit ingest). */
export interface BenchReport {
  schemaVersion: 1;
  startedAt: string;
  finishedAt: string;
  mode: "full" | "quick";
  machine: MachineInfo;
  /** CPU use on the machine just before and just after the run (other work skews every figure). */
  backgroundLoad: { before: ForeignLoad; after: ForeignLoad };
  /** The machine's stall probe on every core just before and just after the run (stalls.ts). */
  machineStalls: { before: StallReading[]; after: StallReading[] };
  config: BenchConfig & { closedLoopTool: string; openLoopScheduler: string };
  cpuPlan: CpuPlan;
  targets: { name: string; description: string }[];
  skipped: { target: string; reason: string }[];
  rows: ResultRow[];
  measurements: Measurement[];
  sections: ReportSection[];
}

/** Open-loop rate above this share of closed-loop req/s is flagged as near saturation. */
export const SATURATION_SHARE = 0.7;

/** Builds the table rows from the raw measurements (see the file comment for the method). */
export function buildRows(options: {
  measurements: readonly Measurement[];
  targets: readonly string[];
  routes: readonly RouteName[];
  idleRssKiB: ReadonlyMap<string, number | undefined>;
  directName: string;
  bareName: string;
  nginxName: string;
}): ResultRow[] {
  const { measurements, targets, routes, idleRssKiB } = options;
  const rows: ResultRow[] = [];
  const key = (t: string, r: string) => `${t}\u0000${r}`;
  const byKey = new Map<string, ResultRow>();
  for (const route of routes) {
    for (const target of targets) {
      const runs = measurements.filter((m) => m.target === target && m.route === route);
      const closedRuns = runs.flatMap((m) => (m.closed ? [m.closed] : []));
      // Per request of each run, then the median over runs, like every other figure.
      const perRequest = (pick: (cpu: CpuSpent) => number | undefined) => {
        const values = runs.flatMap((m) => {
          const seconds = m.cpu === undefined ? undefined : pick(m.cpu);
          return seconds === undefined || !m.closed?.requests
            ? []
            : [(seconds * 1e6) / m.closed.requests];
        });
        return values.length === 0 ? undefined : median(values);
      };
      const vsUpstream = runs.flatMap((m) =>
        m.cpu?.targetS === undefined || !m.cpu.upstreamS ? [] : [m.cpu.targetS / m.cpu.upstreamS],
      );
      const openRuns = runs.flatMap((m) => (m.open ? [m.open] : []));
      const peaks = runs.flatMap((m) => (m.peakRssKiB !== undefined ? [m.peakRssKiB] : []));
      const row: ResultRow = {
        target,
        route,
        closed:
          closedRuns.length === 0
            ? undefined
            : {
                tool: closedRuns[0]?.tool ?? "",
                rps: median(closedRuns.map((c) => c.rps)),
                p50Ms: median(closedRuns.map((c) => c.latency.p50Ms)),
                p99Ms: median(closedRuns.map((c) => c.latency.p99Ms)),
                targetCpuUs: perRequest((cpu) => cpu.targetS),
                machineCpuUs: perRequest((cpu) => cpu.machineS),
                cpuVsUpstream: vsUpstream.length === 0 ? undefined : median(vsUpstream),
              },
        open:
          openRuns.length === 0
            ? undefined
            : {
                rate: openRuns[0]?.rate ?? 0,
                p50Ms: median(openRuns.map((o) => o.latency.p50Ms)),
                p99Ms: median(openRuns.map((o) => o.latency.p99Ms)),
                p999Ms: median(openRuns.map((o) => o.latency.p999Ms)),
                nearSaturation: false,
              },
        ratios: {},
        memory: {
          idleKiB: idleRssKiB.get(target),
          peakKiB: peaks.length > 0 ? Math.max(...peaks) : undefined,
        },
        errors:
          closedRuns.reduce((s, c) => s + c.errors, 0) + openRuns.reduce((s, o) => s + o.errors, 0),
        failedRuns: runs.filter((m) => m.failure !== undefined).length,
        maxForeignCores: Math.max(
          0,
          ...runs.map((m) => (m.foreignCpu ? m.foreignCpu.cores + m.foreignCpu.stealCores : 0)),
        ),
      };
      rows.push(row);
      byKey.set(key(target, route), row);
    }
  }
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 && Number.isFinite(a) ? a / b : undefined;
  const diff = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b)
      ? a - b
      : undefined;
  for (const row of rows) {
    if (row.open !== undefined && row.closed !== undefined) {
      row.open.nearSaturation = row.open.rate > SATURATION_SHARE * row.closed.rps;
    }
    const direct = byKey.get(key(options.directName, row.route));
    const bare = byKey.get(key(options.bareName, row.route));
    const nginx = byKey.get(key(options.nginxName, row.route));
    // Added latency only against direct at the same open-loop rate (see RunningTarget.openRate).
    const sameRate = row.open !== undefined && row.open.rate === direct?.open?.rate;
    row.ratios = {
      rpsVsDirect: ratio(row.closed?.rps, direct?.closed?.rps),
      rpsVsBare: ratio(row.closed?.rps, bare?.closed?.rps),
      rpsVsNginx: ratio(row.closed?.rps, nginx?.closed?.rps),
      addedP50Ms: sameRate ? diff(row.open?.p50Ms, direct?.open?.p50Ms) : undefined,
      addedP99Ms: sameRate ? diff(row.open?.p99Ms, direct?.open?.p99Ms) : undefined,
      addedP999Ms: sameRate ? diff(row.open?.p999Ms, direct?.open?.p999Ms) : undefined,
    };
  }
  return rows;
}

const dash = "-";
const fixed = (v: number | undefined, digits: number) =>
  v === undefined || !Number.isFinite(v) ? dash : v.toFixed(digits);
const signed = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? dash : `${v >= 0 ? "+" : ""}${v.toFixed(3)}`;
const mib = (kib: number | undefined) => (kib === undefined ? dash : (kib / 1024).toFixed(1));

/** The table as plain-text lines (also valid Markdown-ish when pasted into docs). */
export function formatTable(
  rows: readonly ResultRow[],
  openRate: number,
  connections: number,
): string[] {
  const header = [
    "target",
    "route",
    "req/s",
    "÷direct",
    "÷bare",
    "÷nginx",
    "p50 ms",
    "p99 ms",
    "CPU µs/req",
    "÷upstream CPU",
    "machine µs/req",
    `@${openRate}/s p50`,
    "p99",
    "p99.9",
    "+p50 ms",
    "+p99 ms",
    "+p99.9 ms",
    "RSS idle MiB",
    "RSS load MiB",
    "other CPU",
    "errors",
  ];
  const body = rows.map((r) => [
    r.target,
    r.route,
    r.closed ? Math.round(r.closed.rps).toString() : dash,
    fixed(r.ratios.rpsVsDirect, 2),
    fixed(r.ratios.rpsVsBare, 2),
    fixed(r.ratios.rpsVsNginx, 2),
    fixed(r.closed?.p50Ms, 2),
    fixed(r.closed?.p99Ms, 2),
    fixed(r.closed?.targetCpuUs, 0),
    fixed(r.closed?.cpuVsUpstream, 2),
    fixed(r.closed?.machineCpuUs, 0),
    `${r.open?.nearSaturation ? "*" : ""}${r.open !== undefined && r.open.rate !== openRate ? `(@${r.open.rate}/s) ` : ""}${fixed(r.open?.p50Ms, 3)}`,
    fixed(r.open?.p99Ms, 3),
    fixed(r.open?.p999Ms, 3),
    signed(r.ratios.addedP50Ms),
    signed(r.ratios.addedP99Ms),
    signed(r.ratios.addedP999Ms),
    mib(r.memory.idleKiB),
    mib(r.memory.peakKiB),
    r.maxForeignCores.toFixed(2),
    r.failedRuns > 0 ? `${r.errors} (${r.failedRuns} runs failed)` : String(r.errors),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(...all.map((line) => (line[c] ?? "").length)));
  // Text columns left-aligned, figures right-aligned, so the numbers line up by magnitude.
  const render = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, c) => (c < 2 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  const notes: string[] = [];
  if (rows.some((r) => r.open?.nearSaturation)) {
    notes.push(
      `* open-loop rate above ${SATURATION_SHARE * 100}% of that row's closed-loop req/s: its latency is mostly queueing.`,
    );
  }
  if (rows.some((r) => r.open !== undefined && r.open.rate !== openRate)) {
    notes.push(
      `(@N/s): that row's open loop ran at N req/s, its capacity being below ${openRate} req/s; no added latency is computed for it.`,
    );
  }
  notes.push(
    "CPU µs/req: CPU time of the target's own processes per request in the closed loop; ÷upstream CPU: the same divided by the upstream's CPU time in the same runs (steadier than µs when the machine's speed changes); machine µs/req: busy time of every core per request (load generator, upstream and services included).",
    "other CPU: most cores used by other processes plus hypervisor steal during any run of the row (0.00 = quiet machine).",
  );
  return [
    `Closed loop: ${connections} connections (req/s, p50, p99; ratios are req/s ÷ that row's req/s on the same route).`,
    `Open loop: ${openRate} req/s on a fixed timetable (latency from scheduled start; +pX = added over direct).`,
    "",
    render(header),
    rule,
    ...body.map(render),
    ...notes,
  ];
}

/** Writes the report as `<outDir>/<timestamp>.json` and returns the path. */
export function writeReport(report: BenchReport, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, "-");
  const path = join(outDir, `${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
  return path;
}
