/**
 * Latchkey benchmark harness: `npm run bench` (full) or `npm run bench -- --quick` (CI smoke).
 *
 * Starts a credential-checking upstream, starts every target (direct, nginx, bare Node proxy,
 * then the Latchkey rows from latchkey-targets.ts), checks each answers correctly, warms them
 * up, then measures closed-loop throughput and open-loop latency on every route, interleaving
 * targets within each round (A B C A B C ...) so slow drift of the machine hits all of them
 * alike. Prints one table and writes the same figures to bench/results/<timestamp>.json.
 *
 * Exit status: 0 when every measured row completed without errors; 1 when a run failed or a
 * target answered with errors. Speed is never asserted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchConfig, parseConfig, USAGE } from "./args.ts";
import { BARE_TARGET_NAME, bareProxyTarget } from "./bare-proxy.ts";
import { type CpuPlan, resolveCpuPlan } from "./cpu-plan.ts";
import {
  describeForeignLoad,
  type ForeignLoad,
  measureForeignLoad,
  startCpuMeter,
  startForeignLoadMeter,
} from "./cpu-usage.ts";
import { DIRECT_TARGET_NAME, directTarget } from "./direct.ts";
import { latchkeyTargets, quickLatchkeyTargets } from "./latchkey-targets.ts";
import { runNodeClosedLoop } from "./load-closed.ts";
import { runOpenLoop } from "./load-open.ts";
import type { ClosedLoopResult, ClosedLoopSpec, OpenLoopSpec } from "./load-spec.ts";
import { hasWrk, runWrk } from "./load-wrk.ts";
import { describeMachine } from "./machine.ts";
import { sampleRssDuring, sumRssKiB } from "./memory.ts";
import { NGINX_TARGET_NAME, nginxTarget } from "./nginx.ts";
import { measurePairs, PAIRED_SECTION_ID } from "./paired.ts";
import { assertUpstreamRequiresCredential, preflight, warmUp } from "./preflight.ts";
import {
  type BenchReport,
  buildRows,
  formatTable,
  type Measurement,
  writeReport,
} from "./report.ts";
import { ROUTES, type Route } from "./routes.ts";
import { extraSections, type ReportSection } from "./sections.ts";
import { describeStalls, probeSleepMs, probeStalls, type StallReading } from "./stalls.ts";
import type { RunningTarget, Target } from "./target.ts";
import { startUpstream, type Upstream } from "./upstream.ts";

const log = (line = "") => process.stdout.write(`${line}\n`);

interface Started {
  target: Target;
  running: RunningTarget;
}

/** Foreign CPU use (cores) above which the machine is reported as not idle. */
const BUSY_WARNING_CORES = 0.15;
/** Hypervisor steal (cores) above which the host is reported as contended. */
const STEAL_WARNING_CORES = 0.05;

/** True when other work (in the guest or on the host) was large enough to skew figures. */
function disturbed(load: ForeignLoad): boolean {
  return load.cores > BUSY_WARNING_CORES || load.stealCores > STEAL_WARNING_CORES;
}

/**
 * The stall probe (stalls.ts), spinning and then sleeping `probeMs` each. A diagnostic: when
 * it fails the run goes on (and keeps its figures) with no readings, and says why.
 */
async function probeMachineStalls(probeMs: number): Promise<StallReading[]> {
  try {
    return await probeStalls(probeMs, probeMs);
  } catch (error) {
    log(`machine stall probe failed: ${(error as Error).message}`);
    return [];
  }
}

/** The stall probe's lines: the machine's floor under every tail latency. */
function logStalls(when: string, probeMs: number, readings: readonly StallReading[]): void {
  log(
    `machine stalls ${when} (every core spun ${probeMs / 1000} s, then slept ${probeSleepMs} ms at a time for ${probeMs / 1000} s):`,
  );
  if (readings.length === 0) log("  none (the probe failed)");
  for (const line of describeStalls(readings)) log(`  ${line}`);
}

/** One line describing other work on the machine, with a warning when it was not quiet. */
function describeLoad(load: ForeignLoad): string {
  const text = describeForeignLoad(load);
  return disturbed(load)
    ? `${text} - WARNING: machine not idle, figures will be low and noisy`
    : text;
}

/** Resolves which closed-loop generator to use, and why when it is not wrk. */
function chooseClosedLoopTool(config: BenchConfig): { tool: "wrk" | "node"; note?: string } {
  if (config.load === "node") return { tool: "node", note: "--load node" };
  if (hasWrk()) return { tool: "wrk" };
  if (config.load === "wrk") {
    throw new Error("--load wrk given but wrk is not installed (apt-get install -y wrk)");
  }
  return { tool: "node", note: "wrk not found (apt-get install -y wrk), using the fallback" };
}

/** Starts every target that can run, recording skips; stops nothing on failure of one target. */
async function startTargets(
  targets: readonly Target[],
  upstream: Upstream,
  cpuPlan: CpuPlan,
  scratch: string,
  config: BenchConfig,
  skipped: { target: string; reason: string }[],
): Promise<Started[]> {
  const started: Started[] = [];
  for (const target of targets) {
    const skip = await target.skipReason?.();
    if (skip !== undefined) {
      skipped.push({ target: target.name, reason: skip });
      log(`skip ${target.name}: ${skip}`);
      continue;
    }
    const tmpDir = mkdtempSync(join(scratch, `${target.name}-`));
    let running: RunningTarget;
    try {
      running = await target.start({
        upstream,
        serverCores: cpuPlan.serverCores,
        cpuPlan,
        tmpDir,
        quick: config.quick,
      });
    } catch (error) {
      const reason = `failed to start: ${(error as Error).message}`;
      skipped.push({ target: target.name, reason });
      log(`skip ${target.name}: ${reason}`);
      continue;
    }
    const problem = await preflight(running, ROUTES);
    if (problem !== undefined) {
      const reason = `preflight failed: ${problem}`;
      skipped.push({ target: target.name, reason });
      log(`skip ${target.name}: ${reason}`);
      await running.stop();
      continue;
    }
    log(
      `started ${target.name} at ${running.baseUrl} (pids ${running.pids().join(", ") || "none of its own"})`,
    );
    started.push({ target, running });
  }
  return started;
}

function closedSpec(
  running: RunningTarget,
  route: Route,
  config: BenchConfig,
  durationS: number,
): ClosedLoopSpec {
  return {
    baseUrl: running.baseUrl,
    route,
    headers: { ...running.headers, ...route.headers },
    headerRotation: running.headerRotation,
    durationS,
    connections: config.connections,
  };
}

function openSpec(
  running: RunningTarget,
  route: Route,
  config: BenchConfig,
  spin: boolean,
): OpenLoopSpec {
  return {
    baseUrl: running.baseUrl,
    route,
    headers: { ...running.headers, ...route.headers },
    headerRotation: running.headerRotation,
    durationS: config.openDurationS,
    leadInS: config.openLeadInS,
    rate: Math.min(running.openRate ?? config.openRate, config.openRate),
    maxConnections: 64,
    spin,
  };
}

async function main(): Promise<number> {
  const benchDir = fileURLToPath(new URL(".", import.meta.url));
  let config: BenchConfig;
  try {
    config = parseConfig(process.argv.slice(2), join(benchDir, "results"));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const cpuPlan = resolveCpuPlan(config.pin);
  const { tool, note: toolNote } = chooseClosedLoopTool(config);

  log(`Latchkey benchmark (${config.quick ? "quick" : "full"} mode), ${startedAt}`);
  log(
    `machine: ${machine.cores} cores, ${machine.cpuModel}, ${machine.memoryMiB} MiB, Linux ${machine.kernel}, Node ${machine.node}`,
  );
  log(
    `tools: closed loop ${tool === "wrk" ? machine.wrk : `built-in Node generator (${toolNote})`}; ` +
      `open loop built-in Node generator; nginx ${machine.nginx ?? "not installed"}`,
  );
  log(`cores: ${cpuPlan.description}${cpuPlan.note ? ` (${cpuPlan.note})` : ""}`);
  const loadBefore = await measureForeignLoad(config.quick ? 500 : 2000);
  const stallProbeMs = config.quick ? 250 : 2000;
  const stallsBefore = await probeMachineStalls(stallProbeMs);
  // Spinning dispatch needs a core of its own and nobody else wanting it (see OpenLoopSpec.spin).
  const spin =
    config.dispatch === "spin" ||
    (config.dispatch === "auto" && cpuPlan.loadCores !== undefined && !disturbed(loadBefore));
  log(
    `plan: ${config.rounds} round(s); closed loop ${config.connections} connections x ${config.closedDurationS} s; ` +
      `open loop ${config.openRate} req/s x ${config.openDurationS} s after a ${config.openLeadInS}-s lead-in ` +
      `(${spin ? "spin dispatch" : "timer dispatch: sends up to ~1 ms late, included in latency"}); ` +
      `warm-up ${config.warmupRequests} requests per route`,
  );
  log(`other work on the machine before the run: ${describeLoad(loadBefore)}`);
  logStalls("before the run", stallProbeMs, stallsBefore);
  log();

  const allTargets = [directTarget, nginxTarget, bareProxyTarget, ...latchkeyTargets];
  // --quick (CI) keeps to the embedded Latchkey row unless --targets names others: each
  // cluster row starts five processes and provisions them, which alone takes ~10 s.
  const defaultTargets = config.quick
    ? allTargets.filter(
        (t) => !latchkeyTargets.includes(t) || quickLatchkeyTargets.includes(t.name),
      )
    : allTargets;
  const wanted =
    config.targets.length === 0
      ? defaultTargets
      : allTargets.filter((t) => config.targets.includes(t.name));
  for (const name of config.targets) {
    if (name !== "none" && !allTargets.some((t) => t.name === name))
      log(`unknown target ${name} (known: ${allTargets.map((t) => t.name).join(", ")})`);
  }

  const scratch = mkdtempSync(join(tmpdir(), "latchkey-bench-"));
  const skipped: { target: string; reason: string }[] = [];
  if (config.quick && config.targets.length === 0) {
    for (const t of allTargets.filter((t) => !defaultTargets.includes(t))) {
      const reason = "not in --quick (name it with --targets to include it)";
      skipped.push({ target: t.name, reason });
      log(`skip ${t.name}: ${reason}`);
    }
  }
  const measurements: Measurement[] = [];
  const idleRss = new Map<string, number | undefined>();
  const sections: ReportSection[] = [];
  const sectionFailures: string[] = [];
  let upstream: Upstream | undefined;
  let started: Started[] = [];
  try {
    upstream = await startUpstream({ cores: cpuPlan.serverCores });
    await assertUpstreamRequiresCredential(upstream);
    log(
      `upstream at ${upstream.baseUrl} (pid ${upstream.pid}); answers 401 without the credential`,
    );
    started = await startTargets(wanted, upstream, cpuPlan, scratch, config, skipped);
    if (started.length === 0 && wanted.length > 0) throw new Error("no target could be started");

    for (const { target, running } of started) {
      await warmUp(running, ROUTES, config.warmupRequests, 32);
      const pids = running.pids();
      idleRss.set(target.name, pids.length > 0 ? sumRssKiB(pids) : undefined);
    }
    log(`warmed up ${started.length} target(s)`);
    log();

    let runId = 0;
    const upstreamPid = upstream.pid;
    const runClosed = (running: RunningTarget, route: Route, durationS: number) => {
      const spec = closedSpec(running, route, config, durationS);
      const opts = { cores: cpuPlan.loadCores, tmpDir: scratch, id: String(++runId) };
      return tool === "wrk" ? runWrk(spec, opts) : runNodeClosedLoop(spec, opts);
    };
    const measure = async (
      round: number,
      kind: "closed" | "open",
      { target, running }: Started,
      route: Route,
    ) => {
      const sampler = sampleRssDuring(() => running.pids());
      const foreign = startForeignLoadMeter();
      const m: Measurement = { round, target: target.name, route: route.name, kind };
      const label = `r${round} ${kind.padEnd(6)} ${route.name.padEnd(12)} ${target.name.padEnd(18)}`;
      let line: string;
      try {
        if (kind === "closed") {
          const cpu = startCpuMeter(running.pids(), upstreamPid);
          const result: ClosedLoopResult = await runClosed(running, route, config.closedDurationS);
          m.closed = result;
          m.cpu = cpu.stop();
          line =
            `${label} ${Math.round(result.rps).toString().padStart(7)} req/s` +
            `  p50 ${result.latency.p50Ms.toFixed(2)}  p99 ${result.latency.p99Ms.toFixed(2)} ms` +
            (result.errors > 0 ? `  ERRORS ${result.errors}` : "");
        } else {
          const spec = openSpec(running, route, config, spin);
          const opts = { cores: cpuPlan.loadCores, tmpDir: scratch, id: String(++runId) };
          const result = await runOpenLoop(spec, opts);
          m.open = result;
          line =
            `${label} ${result.rate} req/s  p50 ${result.latency.p50Ms.toFixed(3)}` +
            `  p99 ${result.latency.p99Ms.toFixed(3)}  p99.9 ${result.latency.p999Ms.toFixed(3)} ms` +
            `  (send lag p99 ${result.dispatchLagP99Ms.toFixed(3)} ms)` +
            (result.errors > 0 ? `  ERRORS ${result.errors}` : "");
        }
      } catch (error) {
        m.failure = (error as Error).message;
        line = `${label} FAILED ${m.failure}`;
      }
      m.peakRssKiB = sampler.stop();
      const other = foreign.stop();
      m.foreignCpu = other;
      log(disturbed(other) ? `${line}  [other work: ${describeForeignLoad(other)}]` : line);
      measurements.push(m);
    };

    for (let round = 1; round <= config.rounds; round++) {
      for (const kind of ["closed", "open"] as const) {
        for (const route of ROUTES) {
          for (const s of started) await measure(round, kind, s, route);
        }
      }
    }

    /** Runs one section; a section that throws is reported as failed, and so fails the run. */
    const runSection = async (
      id: string,
      title: string,
      run: () => Promise<{ section: ReportSection; failure?: string }>,
    ) => {
      log(`section ${id}...`);
      let failure: string | undefined;
      try {
        const result = await run();
        sections.push(result.section);
        for (const line of result.section.lines) log(`  ${line}`);
        failure = result.failure;
      } catch (error) {
        failure = (error as Error).message;
        sections.push({ id, title, lines: [`FAILED: ${failure}`], data: { failure } });
      }
      if (failure !== undefined) {
        sectionFailures.push(id);
        log(`section ${id} FAILED: ${failure}`);
      }
    };

    const bare = started.find((s) => s.target.name === BARE_TARGET_NAME);
    const paired = started.filter((s) => config.paired.includes(s.target.name));
    const wantPairs =
      config.pairs > 0 &&
      (config.sections === undefined || config.sections.includes(PAIRED_SECTION_ID));
    if (wantPairs && bare !== undefined && paired.length > 0) {
      await runSection(PAIRED_SECTION_ID, "Paired throughput", async () => {
        const { section, errors } = await measurePairs({
          pairs: config.pairs,
          routes: ROUTES,
          bare,
          targets: paired,
          name: (s) => s.target.name,
          durationS: config.pairDurationS,
          run: (s, route) => runClosed(s.running, route, config.pairDurationS),
          log: (line) => log(`  ${line}`),
        });
        return { section, failure: errors > 0 ? `${errors} errors in the pairs' runs` : undefined };
      });
    } else if (
      wantPairs &&
      wanted.some((t) => t.name === BARE_TARGET_NAME) &&
      wanted.some((t) => config.paired.includes(t.name))
    ) {
      const reason = `needs ${BARE_TARGET_NAME} and one of ${config.paired.join(", ")} running`;
      skipped.push({ target: `section ${PAIRED_SECTION_ID}`, reason });
      log(`skip section ${PAIRED_SECTION_ID}: ${reason}`);
    }

    for (const provider of extraSections) {
      if (config.sections !== undefined && !config.sections.includes(provider.id)) continue;
      if (config.sections === undefined && config.quick && !provider.inQuick) {
        const reason = "not in --quick (name it with --sections to include it)";
        skipped.push({ target: `section ${provider.id}`, reason });
        log(`skip section ${provider.id}: ${reason}`);
        continue;
      }
      const skip = await provider.skipReason?.();
      if (skip !== undefined) {
        skipped.push({ target: `section ${provider.id}`, reason: skip });
        log(`skip section ${provider.id}: ${skip}`);
        continue;
      }
      const context = {
        upstream,
        cpuPlan,
        tmpDir: mkdtempSync(join(scratch, `${provider.id}-`)),
        quick: config.quick,
      };
      await runSection(provider.id, provider.title, async () => ({
        section: await provider.run(context),
      }));
    }
  } finally {
    for (const { running } of started) await running.stop().catch(() => {});
    await upstream?.stop().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }

  const loadAfter = await measureForeignLoad(config.quick ? 500 : 2000);
  const stallsAfter = await probeMachineStalls(stallProbeMs);
  const targetNames = started.map((s) => s.target.name);
  const rows = buildRows({
    measurements,
    targets: targetNames,
    routes: ROUTES.map((r) => r.name),
    idleRssKiB: idleRss,
    directName: DIRECT_TARGET_NAME,
    bareName: BARE_TARGET_NAME,
    nginxName: NGINX_TARGET_NAME,
  });
  const report: BenchReport = {
    schemaVersion: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    mode: config.quick ? "quick" : "full",
    machine,
    backgroundLoad: { before: loadBefore, after: loadAfter },
    machineStalls: { before: stallsBefore, after: stallsAfter },
    config: { ...config, closedLoopTool: tool, openLoopScheduler: spin ? "spin" : "timer" },
    cpuPlan,
    targets: started.map((s) => ({ name: s.target.name, description: s.target.description })),
    skipped,
    rows,
    measurements,
    sections,
  };

  log();
  for (const line of formatTable(rows, config.openRate, config.connections)) log(line);
  for (const { target, reason } of skipped) log(`skipped ${target}: ${reason}`);
  for (const section of sections) {
    log();
    log(section.title);
    for (const line of section.lines) log(line);
  }
  log();
  log(`cores: ${cpuPlan.description}`);
  log(`other work on the machine before the run: ${describeLoad(loadBefore)}`);
  log(`other work on the machine after the run: ${describeLoad(loadAfter)}`);
  logStalls("before the run", stallProbeMs, stallsBefore);
  logStalls("after the run", stallProbeMs, stallsAfter);
  log(`report: ${writeReport(report, config.outDir)}`);

  const bad = rows.filter((r) => r.errors > 0 || r.failedRuns > 0);
  for (const r of bad)
    log(`ERROR: ${r.target} ${r.route}: ${r.errors} errors, ${r.failedRuns} failed runs`);
  for (const id of sectionFailures) log(`ERROR: section ${id} failed`);
  return bad.length > 0 || sectionFailures.length > 0 ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  return 1;
});
