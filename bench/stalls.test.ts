import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { test } from "node:test";
import { describeStalls, probeStalls, summarizeStalls } from "./stalls.ts";

test("stall summary: share lost, rates per second, long stalls, lateness percentiles", () => {
  const reading = summarizeStalls("0", {
    spunMs: 2000,
    gapsMs: [0.06, 0.5, 1, 3.5, 0.08],
    lateMs: Array.from({ length: 100 }, (_, i) => (100 - i) / 100), // 1.00, 0.99, ..., 0.01
  });
  assert.ok(Math.abs(reading.lostShare - 5.14 / 2000) < 1e-12);
  assert.deepEqual(
    { ...reading, lostShare: 0 },
    {
      core: "0",
      spunMs: 2000,
      lostShare: 0,
      stallsPerS: 2.5,
      longStallsPerS: 1, // 1 ms and 3.5 ms, in 2 s
      longestMs: 3.5,
      sleeps: 100,
      lateP50Ms: 0.5,
      lateP99Ms: 0.99,
      lateMaxMs: 1,
    },
  );
});

test("stall summary: a quiet core, and a probe that measured nothing", () => {
  const quiet = summarizeStalls("1", { spunMs: 1000, gapsMs: [], lateMs: [0.05] });
  assert.equal(quiet.lostShare, 0);
  assert.equal(quiet.stallsPerS, 0);
  assert.equal(quiet.longestMs, 0);
  const empty = summarizeStalls("any", { spunMs: 0, gapsMs: [], lateMs: [] });
  assert.ok(Number.isNaN(empty.lostShare));
  assert.ok(Number.isNaN(empty.lateP99Ms));
});

test("stall lines: one per core with its figures", () => {
  const lines = describeStalls([
    summarizeStalls("0", { spunMs: 1000, gapsMs: [2, 0.1], lateMs: [0.1, 0.2] }),
    summarizeStalls("1", { spunMs: 1000, gapsMs: [], lateMs: [0.1] }),
  ]);
  assert.equal(lines.length, 2);
  assert.equal(
    lines[0],
    "core 0: spinning lost 0.2% in 2 stalls/s over 50 µs (1.0/s of 1 ms or more, longest 2.00 ms); " +
      "1-ms sleeps woke late by p50 0.100, p99 0.200, max 0.20 ms",
  );
  assert.match(lines[1] as string, /^core 1: spinning lost 0\.0% in 0 stalls\/s/);
});

test("stall probe: a reading for every core from real probe processes", async () => {
  const readings = await probeStalls(50, 50);
  assert.equal(readings.length, availableParallelism());
  for (const r of readings) {
    assert.ok(r.spunMs >= 50, `spun ${r.spunMs} ms`);
    assert.ok(r.lostShare >= 0 && r.lostShare < 1);
    assert.ok(r.sleeps > 0 && r.sleeps <= 50);
    assert.ok(Number.isFinite(r.lateP50Ms) && Number.isFinite(r.lateMaxMs));
  }
});
