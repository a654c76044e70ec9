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
  /** Cores' worth of CPU those processes used on average (e.g. 0.8 = 80% of one core). */
  cores: number;
  /** The biggest of them (name as in programName, CPU % of one core). */
  top: { pid: number; name: string; cpuPercent: number }[];
}

/**
 * Starts measuring foreign CPU use; `stop()` returns it for the elapsed window. Processes
 * that start and exit inside the window are not seen, so the figure is a lower bound.
 */
export function startForeignLoadMeter(root = process.pid): { stop(): ForeignLoad } {
  const before = processTable();
  const started = performance.now();
  return {
    stop() {
      const after = processTable();
      const seconds = (performance.now() - started) / 1000;
      const usage: { pid: number; name: string; cpuPercent: number }[] = [];
      let total = 0;
      for (const [pid, sample] of after) {
        if (isOursOrKernel(after, pid, root)) continue;
        const delta = sample.ticks - (before.get(pid)?.ticks ?? sample.ticks);
        if (delta <= 0) continue;
        const cores = delta / HZ / Math.max(seconds, 0.001);
        total += cores;
        usage.push({ pid, name: sample.comm, cpuPercent: cores * 100 });
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
      return { cores: total, top };
    },
  };
}

/** Measures foreign CPU use for `sampleMs` (used before and after the run, when nothing of ours is busy). */
export async function measureForeignLoad(sampleMs: number): Promise<ForeignLoad> {
  const meter = startForeignLoadMeter();
  await sleep(sampleMs);
  return meter.stop();
}

/** "0.85 cores (node zz-probe.ts[123] 70%, ...)" */
export function describeForeignLoad(load: ForeignLoad): string {
  const top = load.top.map((p) => `${p.name}[${p.pid}] ${p.cpuPercent}%`).join(", ");
  return `${load.cores.toFixed(2)} cores${top ? ` (${top})` : ""}`;
}
