/**
 * Child-process entry of the open-loop generator.
 *
 * Request i is due at t0 + i / rate, whatever happened to earlier requests, and its latency
 * is measured from that due time, not from when it was actually sent. A closed-loop client
 * (wrk) stops sending while the server stalls and so never records the requests that would
 * have waited ("coordinated omission"); measuring from the timetable charges every stall to
 * every request that should have been sent during it.
 *
 * Usage: node bench/load-open-process.ts <spec.json>   (prints one JSON OpenLoopResult)
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import { LatencyRecorder, percentile } from "./latency.ts";
import { readSpecArgument, sendOne } from "./load-client.ts";
import { type OpenLoopResult, type OpenLoopSpec, originOf, requestPath } from "./load-spec.ts";

/** How long to wait for stragglers after the last due time before counting them as timed out. */
const DRAIN_TIMEOUT_MS = 5000;
/** Unmeasured requests sent first so the timetable does not start with TCP handshakes. */
const PREWARM_REQUESTS = 32;

const spec = readSpecArgument<OpenLoopSpec>();
/** Requests of the lead-in (sent on the timetable, never recorded), then the measured ones. */
const leadIn = Math.round(spec.rate * spec.leadInS);
const measured = Math.max(1, Math.round(spec.rate * spec.durationS));
const total = leadIn + measured;
const intervalMs = 1000 / spec.rate;
const path = requestPath(spec.baseUrl, spec.route.path);
const pool = new Pool(originOf(spec.baseUrl), {
  connections: spec.maxConnections,
  pipelining: 1,
  keepAliveTimeout: 120_000,
});
const latencies = new LatencyRecorder(measured);
// Service time (from the moment the request was handed to the client pool) for comparison:
// it excludes the generator's own lateness but still includes queueing for a connection.
const serviceTimes = new LatencyRecorder(measured);
const lags = new Float64Array(measured);

let prewarmFailures = 0;
await Promise.all(
  Array.from({ length: PREWARM_REQUESTS }, async (_, i) => {
    if (!(await sendOne(pool, spec, i, path))) prewarmFailures++;
  }),
);
if (prewarmFailures === PREWARM_REQUESTS) {
  process.stderr.write(`every pre-warm request to ${spec.baseUrl}${spec.route.path} failed\n`);
  process.exit(1);
}

let next = 0;
let completed = 0;
let errors = 0;
let outstanding = 0;
let allSent: () => void = () => {};
const sentEverything = new Promise<void>((resolve) => {
  allSent = resolve;
});
let allDone: () => void = () => {};
const doneEverything = new Promise<void>((resolve) => {
  allDone = resolve;
});

const t0 = performance.now() + 10;

function fire(i: number, due: number): void {
  const sent = performance.now();
  const recorded = i >= leadIn;
  if (recorded) lags[i - leadIn] = sent - due;
  outstanding++;
  void sendOne(pool, spec, i, path).then((ok) => {
    const end = performance.now();
    outstanding--;
    if (recorded) {
      latencies.record(end - due);
      serviceTimes.record(end - sent);
      completed++;
      if (!ok) errors++;
    }
    if (next >= total && outstanding === 0) allDone();
  });
}

/** Sends everything that is due; returns the due time of the next request (or undefined when done). */
function dispatchDue(): number | undefined {
  const now = performance.now();
  while (next < total) {
    const due = t0 + next * intervalMs;
    if (due > now) return due;
    fire(next, due);
    next++;
  }
  allSent();
  return undefined;
}

function tickTimer(): void {
  const due = dispatchDue();
  if (due !== undefined) setTimeout(tickTimer, Math.max(0, due - performance.now()));
}

function tickSpin(): void {
  // setImmediate lets the poll phase (responses) run between checks, so answers are timed
  // as promptly as with timers while sends leave within microseconds of their due time.
  if (dispatchDue() !== undefined) setImmediate(tickSpin);
}

if (spec.spin) setImmediate(tickSpin);
else setTimeout(tickTimer, Math.max(0, t0 - performance.now()));

await sentEverything;
if (outstanding > 0) {
  await Promise.race([
    doneEverything,
    new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS)),
  ]);
}
const durationS = (performance.now() - (t0 + leadIn * intervalMs)) / 1000;
const timedOut = outstanding;
await pool.destroy();

const latency = latencies.summary();
if (latency === undefined) {
  process.stderr.write("no request completed\n");
  process.exit(1);
}
const result: OpenLoopResult = {
  tool: "node-open-loop",
  rate: spec.rate,
  scheduled: measured,
  completed,
  errors: errors + timedOut,
  timedOut,
  durationS,
  latency,
  serviceTime: serviceTimes.summary() ?? latency,
  scheduler: spec.spin ? "spin" : "timer",
  dispatchLagP99Ms: percentile(lags.sort(), 99),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
