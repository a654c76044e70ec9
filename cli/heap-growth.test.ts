import assert from "node:assert/strict";
import { test } from "node:test";
import { GATEWAY_HEAP_GROWING_PERCENT, gatewayHeapGrowthFlag } from "./heap-growth.ts";

test("the gateway limits heap growth when the node command line does not", () => {
  const ours = `--heap-growing-percent=${GATEWAY_HEAP_GROWING_PERCENT}`;
  assert.equal(gatewayHeapGrowthFlag([]), ours);
  assert.equal(gatewayHeapGrowthFlag(["--max-semi-space-size=16", "--heap-growing"]), ours);
});

test("a heap growth set on the node command line stands", () => {
  assert.equal(gatewayHeapGrowthFlag(["--heap-growing-percent=50"]), undefined);
  assert.equal(gatewayHeapGrowthFlag(["--trace-gc", "--heap_growing_percent=0"]), undefined);
});
