/**
 * CPU used by work that is not the benchmark's, read from /proc (Linux only).
 *
 * The harness shares the machine with whatever else runs on it (a test suite, a compiler,
 * someone else's benchmark). Such work lowers every figure, so the harness measures it
 * before and after the run and during every measurement, and the report states it instead
 * of presenting disturbed figures as clean ones.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux build Node supports. */
const HZ = 100;

interface ProcessSample {
  comm: string;
  ppid: number;
  ticks: number;
}

/** utime + stime of every process, with its parent, keyed by pid. */
function processTable(): Map<number, ProcessSample> {
  const out = new Map<number, ProcessSample>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const rest = stat.slice(close + 2).split(" ");
      // After ')': state ppid ... utime (index 11) stime (index 12).
      out.set(Number(entry), {
        comm,
        ppid: Number(rest[1]),
        ticks: Number(rest[11]) + Number(rest[12]),
      });
    } catch {
      // The process exited during the scan.
    }
  }
  return out;
}

/** True for `pid` itself or any descendant of `root` in `table`; kernel threads (under pid 2) too. */
function isOursOrKernel(table: Map<number, ProcessSample>, pid: number, root: number): boolean {
  let current = pid;
  for (let depth = 0; depth < 64; depth++) {
    // Kernel threads (softirq, kworkers) carry our own network traffic; never count them as foreign.
    if (current === root || current === 2) return true;
    const entry = table.get(current);
    if (entry === undefined || entry.ppid <= 0) return false;
    current = entry.ppid;
  }
  return false;
}

/**
 * A short name for a process: for interpreters ("node", "python3") the base name of the
 * script too, since every Node process's thread name is "MainThread". Only base names are
 * kept; the rest of the command line (which could hold anything) never enters the report.
 */
function programName(pid: number, comm: string): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const exe = basename(argv[0] ?? comm);
    const script = argv.slice(1).find((a) => a !== "" && !a.startsWith("-"));
    // Other programs keep the kernel's name (15 characters): some (postgres) rewrite their
    // argv into a status line that does not belong in a report.
    return /^(node|python\d*(\.\d+)?|bun|deno)$/.test(exe) && script
      ? `${exe} ${basename(script)}`
      : comm;
  } catch {
    return comm;
  }
}

/** CPU used by processes that are not the harness or its children, over a time window. */
export interface ForeignLoad {
  /**
   * Cores' worth of CPU other processes used on average (e.g. 0.8 = 80% of one core):
   * all busy CPU time of the machine minus the harness's own processes.
   */
  cores: number;
  /**
   * Cores' worth of time the hypervisor gave to other guests while ours wanted to run ("steal"
   * in /proc/stat). Non-zero means the host itself is contended; latency tails suffer first.
   */
  stealCores: number;
  /** The biggest foreign processes (name as in programName, CPU % of one core). */
  top: { pid: number; name: string; cpuPercent: number }[];
}

/** Machine-wide busy and steal ticks from the first line of /proc/stat. */
function systemTicks(): { busy: number; steal: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // Without IRQ time accounting a task's stime includes the (soft)irq ticks taken while it
    // ran, which /proc/stat files under irq/softirq: count them as busy so the two agree.
    return { busy: user + nice + system + irq + softirq, steal };
  } catch {
    return { busy: 0, steal: 0 };
  }
}

/** utime + stime of one process, or undefined when it is gone. */
function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return undefined;
  }
}

/** `root` and all its descendants, via /proc/<pid>/task/<tid>/children (cheap: no /proc scan). */
function processTree(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 1000) {
    const pid = queue.shift() as number;
    out.push(pid);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
        if (text !== "") queue.push(...text.split(/\s+/).map(Number));
      } catch {
        // Thread gone, or the kernel lacks the children file: the descendant is then
        // counted as foreign, which errs towards reporting a busy machine.
      }
    }
  }
  return out;
}

/**
 * Starts measuring foreign CPU use; `stop()` returns it for the elapsed window.
 *
 * Foreign = machine busy time - CPU time of the harness's own processes (the orchestrator and
 * its descendants, polled every `pollMs` so short-lived ones such as wrk are caught) - kernel
 * threads (they carry our loopback traffic). Subtracting from the machine total also catches
 * other processes that start and exit inside the window, which a per-process diff would miss.
 */
export function startForeignLoadMeter(root = process.pid, pollMs = 100): { stop(): ForeignLoad } {
  const before = processTable();
  const system0 = systemTicks();
  const started = performance.now();
  const ours = new Map<number, { first: number; last: number }>();
  const pollOurs = () => {
    for (const pid of processTree(root)) {
      const ticks = processTicks(pid);
      if (ticks === undefined) continue;
      const entry = ours.get(pid);
      if (entry !== undefined) entry.last = ticks;
      // A process that did not exist at the start used all of its CPU inside the window.
      else ours.set(pid, { first: before.get(pid)?.ticks ?? 0, last: ticks });
    }
  };
  pollOurs();
  const timer = setInterval(pollOurs, pollMs);
  return {
    stop() {
      clearInterval(timer);
      pollOurs();
      const system1 = systemTicks();
      const after = processTable();
      const seconds = Math.max((performance.now() - started) / 1000, 0.001);
      let ourTicks = 0;
      for (const { first, last } of ours.values()) ourTicks += last - first;
      const usage: { pid: number; name: string; cpuPercent: number }[] = [];
      for (const [pid, sample] of after) {
        const prior = before.get(pid)?.ticks ?? 0;
        if (isOursOrKernel(after, pid, root)) {
          // Kernel threads are not in our tree but work for us (softirq for loopback).
          if (!ours.has(pid)) ourTicks += sample.ticks - prior;
          continue;
        }
        const delta = sample.ticks - prior;
        if (delta > 0)
          usage.push({ pid, name: sample.comm, cpuPercent: (delta / HZ / seconds) * 100 });
      }
      const top = usage
        .sort((a, b) => b.cpuPercent - a.cpuPercent)
        .slice(0, 3)
        .filter((u) => u.cpuPercent >= 5)
        .map((u) => ({
          ...u,
          name: programName(u.pid, u.name),
          cpuPercent: Math.round(u.cpuPercent),
        }));
      const foreignTicks = Math.max(0, system1.busy - system0.busy - ourTicks);
      return {
        cores: foreignTicks / HZ / seconds,
        stealCores: (system1.steal - system0.steal) / HZ / seconds,
        top,
      };
    },
  };
}

/** CPU seconds spent during one measurement, for its cost per request. */
export interface CpuSpent {
  /** By the target's own processes (its `pids()`: the proxy, not the upstream); absent without any. */
  targetS?: number;
  /** By the whole machine (busy time of every core: load generator, upstream, target, services). */
  machineS: number;
  /**
   * By the upstream process, when its pid was given. It shares the target's core, so the
   * target's CPU divided by it cancels most of the machine's changes of speed between runs
   * (its own cost per request still falls as the rate rises: compare a row across runs).
   */
  upstreamS?: number;
}

/**
 * Starts counting the CPU time of `pids` (and of `upstreamPid`, when given) and the
 * machine's busy time; `stop()` returns what was spent since.
 */
export function startCpuMeter(pids: readonly number[], upstreamPid?: number): { stop(): CpuSpent } {
  const ticks = (of: readonly number[]) =>
    of.reduce((sum, pid) => sum + (processTicks(pid) ?? 0), 0);
  const upstream = upstreamPid === undefined ? [] : [upstreamPid];
  const target0 = ticks(pids);
  const upstream0 = ticks(upstream);
  const machine0 = systemTicks().busy;
  return {
    stop() {
      const spent: CpuSpent = { machineS: Math.max(0, systemTicks().busy - machine0) / HZ };
      if (pids.length > 0) spent.targetS = Math.max(0, ticks(pids) - target0) / HZ;
      if (upstreamPid !== undefined)
        spent.upstreamS = Math.max(0, ticks(upstream) - upstream0) / HZ;
      return spent;
    },
  };
}

/** Measures foreign CPU use for `sampleMs` (used before and after the run, when nothing of ours is busy). */
export async function measureForeignLoad(sampleMs: number): Promise<ForeignLoad> {
  const meter = startForeignLoadMeter();
  await sleep(sampleMs);
  return meter.stop();
}

/** "0.85 cores, steal 0.02 (node zz-probe.ts[123] 70%, ...)" */
export function describeForeignLoad(load: ForeignLoad): string {
  const top = load.top.map((p) => `${p.name}[${p.pid}] ${p.cpuPercent}%`).join(", ");
  return `${load.cores.toFixed(2)} cores, host steal ${load.stealCores.toFixed(2)}${top ? ` (${top})` : ""}`;
}
