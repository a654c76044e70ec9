/**
 * Child-process entry of the Node closed-loop generator, the fallback when wrk is not
 * installed: `connections` independent loops, each sending its next request as soon as the
 * previous one has completed, for `durationS` seconds. Prints one JSON ClosedLoopResult.
 *
 * Usage: node bench/load-closed-process.ts <spec.json>
 */
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import { LatencyRecorder } from "./latency.ts";
import { readSpecArgument, sendOne } from "./load-client.ts";
import { type ClosedLoopResult, type ClosedLoopSpec, originOf, requestPath } from "./load-spec.ts";

const spec = readSpecArgument<ClosedLoopSpec>();
const path = requestPath(spec.baseUrl, spec.route.path);
const pool = new Pool(originOf(spec.baseUrl), {
  connections: spec.connections,
  pipelining: 1,
  keepAliveTimeout: 120_000,
});
// A Node client tops out well below 100k req/s on one core; 200k/s is a safe bound on samples.
const latencies = new LatencyRecorder(Math.ceil(spec.durationS * 200_000));

let sent = 0;
let errors = 0;

async function loop(deadline: number): Promise<void> {
  while (performance.now() < deadline) {
    const i = sent++;
    const start = performance.now();
    const ok = await sendOne(pool, spec, i, path);
    latencies.record(performance.now() - start);
    if (!ok) errors++;
  }
}

const started = performance.now();
const deadline = started + spec.durationS * 1000;
await Promise.all(Array.from({ length: spec.connections }, () => loop(deadline)));
const durationS = (performance.now() - started) / 1000;
await pool.close();

const latency = latencies.summary();
if (latency === undefined) {
  process.stderr.write("no request completed\n");
  process.exit(1);
}
const result: ClosedLoopResult = {
  tool: "node",
  requests: latency.count,
  durationS,
  rps: latency.count / durationS,
  errors,
  latency,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
