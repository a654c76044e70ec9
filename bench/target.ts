/**
 * The pluggable "target" abstraction: one thing the load generators can be pointed at.
 *
 * The baseline targets (direct, nginx, bare Node) live in direct.ts, nginx.ts and
 * bare-proxy.ts; the Latchkey targets are listed in latchkey-targets.ts. The harness treats
 * them all the same way: ask `skipReason()`, `start()` it, send load to `baseUrl` with
 * `headers`, sample the RSS of `pids()`, `stop()` it.
 */
import type { CpuPlan } from "./cpu-plan.ts";
import type { Upstream } from "./upstream.ts";

/** What the harness hands a target when starting it. */
export interface TargetContext {
  /** The running upstream; a proxy target forwards to `upstream.baseUrl` and injects `upstream.credential`. */
  upstream: Upstream;
  /**
   * Cores the proxy under test should be pinned to (pass to `startChild(..., { cores })`);
   * undefined means do not pin.
   */
  serverCores: string | undefined;
  cpuPlan: CpuPlan;
  /** A private scratch directory for this target (config files, pid files, logs); removed after the run. */
  tmpDir: string;
  /** True in `--quick` mode; a target may use smaller caches or fewer warm-up requests. */
  quick: boolean;
}

/** A started target. */
export interface RunningTarget {
  /** Where the load goes, without a trailing slash, e.g. http://127.0.0.1:8080. Must be 127.0.0.1. */
  baseUrl: string;
  /**
   * Headers the client sends on every request: e.g. the Latchkey proxy token. For the direct
   * target this is the upstream credential itself; for nginx and the bare proxy it is empty
   * because they inject the credential.
   */
  headers: Record<string, string>;
  /**
   * Optional per-request header sets, used in round-robin order instead of `headers` (for the
   * "each request a different valid token" row). Bounded by the caller: keep it to a few
   * thousand entries, it is inlined into the wrk Lua script.
   */
  headerRotation?: ReadonlyArray<Record<string, string>>;
  /**
   * Open-loop rate for this row when it cannot sustain the harness's `--rate` (its
   * closed-loop capacity is below it, so a fixed timetable at that rate only measures an
   * ever-growing queue and ends in timeouts). The table marks such rows; their added latency
   * over direct is then against direct at a different rate and is left out.
   */
  openRate?: number;
  /**
   * Pids whose RSS counts as this target's memory (e.g. nginx master + workers, the gateway
   * processes). Called at every sample so targets whose workers come and go stay accurate.
   * Return [] when there is no process of the target's own (the direct row).
   */
  pids(): number[];
  stop(): Promise<void>;
}

/** One row family of the benchmark table. */
export interface Target {
  /** Short unique name, printed in the table (e.g. "nginx", "bare-node", "latchkey-embedded"). */
  name: string;
  /** One line saying what this target is, printed in the report. */
  description: string;
  /**
   * Returns why this target cannot run on this machine (e.g. "nginx not installed"), or
   * undefined when it can. The harness prints one line per skipped target with this reason.
   */
  skipReason?(): string | undefined | Promise<string | undefined>;
  start(context: TargetContext): Promise<RunningTarget>;
}
