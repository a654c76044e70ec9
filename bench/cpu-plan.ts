/**
 * How the harness shares the machine's cores between the load generator and the servers.
 *
 * On a 2-core machine a proxy benchmark has three parties (load generator, proxy, upstream)
 * and only two cores, so some sharing is unavoidable; what matters is that it is the same for
 * every target and that the report says what it was. Pinning is done with `taskset`, which
 * execs the real program, so the pid we get back is the pid of the server itself.
 */
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

/** Names of the supported layouts; `--pin <layout>` on the command line. */
export type PinLayout = "split" | "none";

/** The resolved plan: which cores each party may run on (undefined = not pinned). */
export interface CpuPlan {
  layout: PinLayout;
  /** Cores the load generator (wrk or the Node generators) is pinned to. */
  loadCores?: string;
  /** Cores the upstream and every proxy under test are pinned to. */
  serverCores?: string;
  cores: number;
  /** One sentence for the report, stating how the cores were shared. */
  description: string;
  /** Why pinning was not applied, when it was asked for but not possible. */
  note?: string;
}

/** True when `taskset` (util-linux) can be executed. */
export function hasTaskset(): boolean {
  const probe = spawnSync("taskset", ["-V"], { stdio: "ignore" });
  return probe.error === undefined && probe.status === 0;
}

/**
 * Resolves a layout into concrete core lists.
 *
 * `split` (the default) puts the load generator alone on the last core and the upstream plus
 * the proxy under test on the remaining core(s): the generator never steals CPU from the
 * servers, and a proxy's cost shows up as CPU it takes away from the upstream, which is how a
 * proxy on a shared host behaves. `none` leaves scheduling to the kernel.
 */
export function resolveCpuPlan(layout: PinLayout): CpuPlan {
  const cores = availableParallelism();
  if (layout === "none") {
    return {
      layout,
      cores,
      description: `no pinning; ${cores} cores shared by the kernel scheduler`,
    };
  }
  if (cores < 2) {
    return {
      layout: "none",
      cores,
      description: `no pinning; only ${cores} core`,
      note: "pinning needs at least 2 cores",
    };
  }
  if (!hasTaskset()) {
    return {
      layout: "none",
      cores,
      description: `no pinning; ${cores} cores shared by the kernel scheduler`,
      note: "taskset not found (apt-get install util-linux); running unpinned",
    };
  }
  const last = cores - 1;
  const serverCores = last === 1 ? "0" : `0-${last - 1}`;
  const loadCores = String(last);
  return {
    layout,
    cores,
    loadCores,
    serverCores,
    description: `load generator pinned to core ${loadCores}; upstream and proxy under test pinned to core ${serverCores} (they share it)`,
  };
}

/**
 * Prefixes a command with `taskset -c <cores>` when `cores` is set, so callers can spawn
 * pinned and unpinned programs the same way.
 */
export function pinned(
  cores: string | undefined,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  if (cores === undefined) return { command, args };
  return { command: "taskset", args: ["-c", cores, command, ...args] };
}
