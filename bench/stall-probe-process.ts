/**
 * Child-process entry of the machine stall probe (stalls.ts), run pinned to one core: first
 * spins, noting every gap between two clock reads longer than the threshold (time the core
 * was taken away: interrupts, the hypervisor, other processes), then sleeps probeSleepMs at a
 * time, noting how late each wake-up came. Nothing is allocated while it measures but the gap
 * list.
 * Prints one JSON StallSamples.
 *
 * Usage: node bench/stall-probe-process.ts <spinMs> <sleepMs>
 */
import { performance } from "node:perf_hooks";
import { probeSleepMs, type StallSamples, stallThresholdMs } from "./stalls.ts";

const spinMs = Number(process.argv[2]);
const sleepMs = Number(process.argv[3]);
if (!(spinMs > 0) || !(sleepMs > 0)) {
  process.stderr.write("usage: stall-probe-process.ts <spinMs> <sleepMs>\n");
  process.exit(2);
}

const gapsMs: number[] = [];
const spinStart = performance.now();
const spinEnd = spinStart + spinMs;
let last = spinStart;
for (;;) {
  const now = performance.now();
  if (now - last > stallThresholdMs) gapsMs.push(now - last);
  last = now;
  if (now >= spinEnd) break;
}
const spunMs = last - spinStart;

const cell = new Int32Array(new SharedArrayBuffer(4));
const lateMs: number[] = [];
const sleepEnd = performance.now() + sleepMs;
for (;;) {
  const before = performance.now();
  if (before >= sleepEnd) break;
  Atomics.wait(cell, 0, 0, probeSleepMs);
  lateMs.push(performance.now() - before - probeSleepMs);
}

const samples: StallSamples = { spunMs, gapsMs, lateMs };
process.stdout.write(`${JSON.stringify(samples)}\n`);
