import { setFlagsFromString } from "node:v8";

/**
 * How far past its live data a gateway process lets V8's old generation grow before the next
 * full collection, in percent. V8's own growing let a gateway's old space swing from 35 to
 * 65 MiB under load; 25 keeps a busy cluster gateway at 165-180 MB RSS (docs/benchmarks.md).
 */
export const GATEWAY_HEAP_GROWING_PERCENT = 25;

/**
 * The V8 flag that `latchkey run gateway` sets, or undefined when the node command line
 * already has one (Node does not take this flag from NODE_OPTIONS), which then stands.
 *
 * Only the gateway gets it: a process that keeps large batches in flight pays for a tight
 * old generation with full collections. With it services/audit/bench-ingest.ts ran 24-31
 * full collections where V8's own growing ran 4-5 over the same 2 x 100,000 events, and the
 * audit service spent 2-3 times the CPU per event behind a busy gateway (docs/benchmarks.md).
 */
export function gatewayHeapGrowthFlag(execArgv: readonly string[]): string | undefined {
  const given = execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  return given ? undefined : `--heap-growing-percent=${GATEWAY_HEAP_GROWING_PERCENT}`;
}

/**
 * Sets the gateway's heap growth for this process unless the command line set one. V8 reads
 * the flag at every full collection, so setting it at start-up, before any load, works like
 * passing it to node.
 */
export function limitGatewayHeapGrowth(): void {
  const flag = gatewayHeapGrowthFlag(process.execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}
