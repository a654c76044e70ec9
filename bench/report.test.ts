import assert from "node:assert/strict";
import { test } from "node:test";
import type { CpuSpent } from "./cpu-usage.ts";
import type { ClosedLoopResult } from "./load-spec.ts";
import { buildRows, formatTable, type Measurement } from "./report.ts";

function closedRun(target: string, round: number, rps: number, cpu: CpuSpent): Measurement {
  const durationS = 10;
  const closed: ClosedLoopResult = {
    tool: "wrk",
    requests: rps * durationS,
    durationS,
    rps,
    errors: 0,
    latency: {
      count: rps * durationS,
      meanMs: 1,
      p50Ms: 1,
      p90Ms: 2,
      p99Ms: 3,
      p999Ms: 4,
      maxMs: 5,
    },
  };
  return { round, target, route: "get-json", kind: "closed", closed, cpu };
}

function rows(measurements: Measurement[]) {
  return buildRows({
    measurements,
    targets: ["direct", "bare-node"],
    routes: ["get-json"],
    idleRssKiB: new Map(),
    directName: "direct",
    bareName: "bare-node",
    nginxName: "nginx",
  });
}

test("CPU per request: each run's seconds over its requests, median over rounds", () => {
  const [direct, bare] = rows([
    closedRun("direct", 1, 20_000, { machineS: 12, upstreamS: 5 }),
    closedRun("bare-node", 1, 5_000, { targetS: 4, machineS: 10, upstreamS: 2 }),
    closedRun("bare-node", 2, 4_000, { targetS: 6, machineS: 9, upstreamS: 2 }),
    closedRun("bare-node", 3, 5_000, { targetS: 5, machineS: 11, upstreamS: 4 }),
  ]);
  // 12 s over 200,000 requests.
  assert.equal(direct?.closed?.machineCpuUs, 60);
  assert.equal(direct?.closed?.targetCpuUs, undefined);
  // Per run: 80, 150 and 100 µs of the proxy; 200, 225 and 220 µs of the machine.
  assert.equal(bare?.closed?.targetCpuUs, 100);
  assert.equal(bare?.closed?.machineCpuUs, 220);
  // Against the upstream's CPU in the same run: 2, 3 and 1.25; nothing for direct.
  assert.equal(bare?.closed?.cpuVsUpstream, 2);
  assert.equal(direct?.closed?.cpuVsUpstream, undefined);
});

test("the table shows CPU per request, and a dash where a target has no process of its own", () => {
  const table = formatTable(
    rows([
      closedRun("direct", 1, 20_000, { machineS: 12, upstreamS: 5 }),
      closedRun("bare-node", 1, 5_000, { targetS: 4, machineS: 10, upstreamS: 2.5 }),
    ]),
    1000,
    50,
  );
  const cells = (name: string) =>
    (table.find((line) => line.startsWith(`| ${name} `)) ?? "").split("|").map((c) => c.trim());
  const header = cells("target");
  const cpu = header.indexOf("CPU µs/req");
  const machine = header.indexOf("machine µs/req");
  const vsUpstream = header.indexOf("÷upstream CPU");
  assert.ok(cpu > 0 && machine > 0 && vsUpstream > 0);
  assert.equal(cells("direct")[cpu], "-");
  assert.equal(cells("direct")[vsUpstream], "-");
  assert.equal(cells("bare-node")[vsUpstream], "1.60");
  assert.equal(cells("direct")[machine], "60");
  assert.equal(cells("bare-node")[cpu], "80");
  assert.equal(cells("bare-node")[machine], "200");
});
