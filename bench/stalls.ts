/**
 * The machine's own noise, measured before and after a run: how often each core is taken
 * away from a process that wants it, and how late a sleeping process wakes up. On a virtual
 * machine both can be large (a vCPU descheduled by the host, costly timer interrupts), and
 * they set a floor under every tail latency the harness reports: a p99 target below it cannot
 * be shown on that machine, whatever the proxy does. The report states the floor next to the
 * figures instead of leaving the reader to guess it from the direct row.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { runNodeChild } from "./child.ts";
import { hasTaskset } from "./cpu-plan.ts";
import { percentile } from "./latency.ts";

/** Gaps between two clock reads of a spinning loop longer than this count as stalls. */
export const stallThresholdMs = 0.05;
/** Stalls at least this long are counted apart: each can hold a request past a 1-ms target. */
const longStallMs = 1;
/** How long each sleep of the probe's second phase asks for. */
export const probeSleepMs = 1;

/** What one probe process measured (stall-probe-process.ts prints it). */
export interface StallSamples {
  /** Wall time spent spinning. */
  spunMs: number;
  /** Every gap over stallThresholdMs while spinning. */
  gapsMs: number[];
  /** How late each sleep of probeSleepMs woke up. */
  lateMs: number[];
}

/** One core's noise, as reported. */
export interface StallReading {
  /** The core the probe was pinned to, or "any" when it could not be pinned. */
  core: string;
  spunMs: number;
  /** Share of the spinning time lost in stalls. */
  lostShare: number;
  /** Stalls (gaps over stallThresholdMs) per second of spinning. */
  stallsPerS: number;
  /** Stalls of 1 ms or more per second of spinning. */
  longStallsPerS: number;
  longestMs: number;
  /** Lateness of the 1-ms sleeps. */
  sleeps: number;
  lateP50Ms: number;
  lateP99Ms: number;
  lateMaxMs: number;
}

/** Summarizes one probe's samples. */
export function summarizeStalls(core: string, samples: StallSamples): StallReading {
  const seconds = samples.spunMs / 1000;
  let lost = 0;
  let long = 0;
  let longest = 0;
  for (const gap of samples.gapsMs) {
    lost += gap;
    if (gap >= longStallMs) long++;
    if (gap > longest) longest = gap;
  }
  const late = [...samples.lateMs].sort((a, b) => a - b);
  return {
    core,
    spunMs: samples.spunMs,
    lostShare: samples.spunMs > 0 ? lost / samples.spunMs : Number.NaN,
    stallsPerS: seconds > 0 ? samples.gapsMs.length / seconds : Number.NaN,
    longStallsPerS: seconds > 0 ? long / seconds : Number.NaN,
    longestMs: longest,
    sleeps: late.length,
    lateP50Ms: percentile(late, 50),
    lateP99Ms: percentile(late, 99),
    lateMaxMs: late.length > 0 ? (late[late.length - 1] as number) : Number.NaN,
  };
}

/** One line per core for the report. */
export function describeStalls(readings: readonly StallReading[]): string[] {
  return readings.map(
    (r) =>
      `core ${r.core}: spinning lost ${(r.lostShare * 100).toFixed(1)}% in ${r.stallsPerS.toFixed(0)} stalls/s over ` +
      `${stallThresholdMs * 1000} µs (${r.longStallsPerS.toFixed(1)}/s of ${longStallMs} ms or more, longest ` +
      `${r.longestMs.toFixed(2)} ms); ${probeSleepMs}-ms sleeps woke late by p50 ${r.lateP50Ms.toFixed(3)}, ` +
      `p99 ${r.lateP99Ms.toFixed(3)}, max ${r.lateMaxMs.toFixed(2)} ms`,
  );
}

const probeScript = fileURLToPath(new URL("./stall-probe-process.ts", import.meta.url));

/**
 * Runs the probe on every core at once (each pinned to its core when taskset exists; all
 * cores busy is how a benchmark run finds the machine): spinning for `spinMs`, then sleeping
 * for `sleepMs`.
 */
export async function probeStalls(spinMs: number, sleepMs: number): Promise<StallReading[]> {
  const pin = hasTaskset();
  const cores = Array.from({ length: availableParallelism() }, (_, i) => String(i));
  const timeoutMs = spinMs + sleepMs + 15_000;
  const results = await Promise.all(
    cores.map((core) =>
      runNodeChild<StallSamples>(probeScript, [String(spinMs), String(sleepMs)], {
        cores: pin ? core : undefined,
        timeoutMs,
      }),
    ),
  );
  return results.map((samples, i) => summarizeStalls(pin ? (cores[i] as string) : "any", samples));
}
