import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "./args.ts";

test("paired throughput defaults: 16 pairs of 2 s against the one-gateway cluster; quick 1 of 1 s against embedded", () => {
  const full = parseConfig([], "out");
  assert.equal(full.pairs, 16);
  assert.equal(full.pairDurationS, 2);
  assert.deepEqual(full.paired, ["latchkey-cluster-1gw"]);
  const quick = parseConfig(["--quick"], "out");
  assert.equal(quick.pairs, 1);
  assert.equal(quick.pairDurationS, 1);
  assert.deepEqual(quick.paired, ["latchkey-embedded"]);
});

test("paired throughput options: a count of 0 turns it off; lists and durations are parsed", () => {
  const config = parseConfig(
    ["--pairs", "0", "--pair-duration", "3", "--paired", "latchkey-embedded, latchkey-cluster-2gw"],
    "out",
  );
  assert.equal(config.pairs, 0);
  assert.equal(config.pairDurationS, 3);
  assert.deepEqual(config.paired, ["latchkey-embedded", "latchkey-cluster-2gw"]);
});

test("bad paired-throughput options are refused with the option's name", () => {
  assert.throws(() => parseConfig(["--pairs=-1"], "out"), /--pairs must be a whole number/);
  assert.throws(() => parseConfig(["--pairs", "2.5"], "out"), /--pairs must be a whole number/);
  assert.throws(() => parseConfig(["--pairs", "1001"], "out"), /from 0 to 1000, got 1001/);
  assert.throws(
    () => parseConfig(["--pair-duration", "0"], "out"),
    /--pair-duration must be a positive/,
  );
});
