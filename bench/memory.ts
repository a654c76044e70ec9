/**
 * Resident memory of the processes behind a target, read from /proc.
 *
 * RSS (VmRSS) is what the kernel actually keeps in RAM for the process, which is the number an
 * operator sizes a container by. For multi-process targets (nginx master + workers, a gateway
 * cluster) the RSS of each process is summed; shared pages are therefore counted more than
 * once, which over-states rather than under-states.
 */
import { readdirSync, readFileSync } from "node:fs";

/** RSS of one process in KiB, or undefined if it is gone or /proc is unavailable. */
export function readRssKiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of the RSS of `pids` in KiB (processes that vanished count as 0); undefined if none could be read. */
export function sumRssKiB(pids: readonly number[]): number | undefined {
  let total = 0;
  let seen = 0;
  for (const pid of pids) {
    const rss = readRssKiB(pid);
    if (rss !== undefined) {
      total += rss;
      seen++;
    }
  }
  return seen === 0 ? undefined : total;
}

/**
 * Direct children of `pid` (e.g. nginx workers of the master). Uses
 * /proc/<pid>/task/<pid>/children when the kernel provides it, else scans /proc for ppid.
 */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    const out: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        // Field 4 is the ppid; the command name (field 2) may contain spaces, so split after ')'.
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid === pid) out.push(Number(entry));
      } catch {
        // The process exited while we were scanning.
      }
    }
    return out;
  }
}

/** RSS figures of one target, in KiB. */
export interface RssSummary {
  /** Sampled once after start-up and warm-up, with no load. */
  idleKiB?: number;
  /** Highest sum seen while load was running. */
  peakKiB?: number;
}

/**
 * Samples the RSS of `pids()` every `intervalMs` until the returned `stop()` is called, and
 * reports the peak. Sampling reads a small /proc file per process, so even at 100 ms it costs
 * the measured processes nothing.
 */
export function sampleRssDuring(
  pids: () => number[],
  intervalMs = 100,
): { stop(): number | undefined } {
  let peak: number | undefined;
  const take = () => {
    const list = pids();
    if (list.length === 0) return;
    const value = sumRssKiB(list);
    if (value !== undefined && (peak === undefined || value > peak)) peak = value;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}
