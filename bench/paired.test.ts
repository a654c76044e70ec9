import assert from "node:assert/strict";
import { test } from "node:test";
import { measurePairs, medianInterval } from "./paired.ts";
import type { RouteName } from "./routes.ts";

/** P(Binomial(n, 1/2) ≤ j), exactly. */
function binomialCdf(n: number, j: number): number {
  let c = 1n;
  let sum = 0n;
  for (let i = 0; i <= j; i++) {
    sum += c;
    c = (c * BigInt(n - i)) / BigInt(i + 1);
  }
  return Number((sum * 10n ** 18n) / 2n ** BigInt(n)) / 1e18;
}

test("median interval: none below six samples, [min, max] at six", () => {
  assert.equal(medianInterval([1, 2, 3, 4, 5]), undefined);
  assert.deepEqual(medianInterval([6, 1, 5, 2, 4, 3]), { low: 1, high: 6, coverage: 1 - 2 / 64 });
});

test("median interval: the narrowest pair of order statistics that still covers 95%", () => {
  for (const n of [...Array.from({ length: 35 }, (_, i) => i + 6), 1000]) {
    const values = Array.from({ length: n }, (_, i) => n - i); // n, n-1, ..., 1
    const interval = medianInterval(values);
    assert.ok(interval !== undefined, `n=${n}`);
    const k = interval.low; // the samples are 1..n, so x(k) = k
    assert.equal(interval.high, n + 1 - k, `n=${n}: symmetric`);
    const coverage = 1 - 2 * binomialCdf(n, k - 1);
    assert.ok(Math.abs(interval.coverage - coverage) < 1e-9, `n=${n}: coverage`);
    assert.ok(coverage >= 0.95, `n=${n}: at least 95%`);
    assert.ok(1 - 2 * binomialCdf(n, k) < 0.95, `n=${n}: one step narrower misses 95%`);
    if (n === 1000) assert.ok(k > 460 && k < 480, `n=1000: k=${k}`); // ~ n/2 - 1.96·√n/2
  }
  // 16 pairs (the full mode's default): x(4) and x(13), 97.9%.
  const sixteen = medianInterval(Array.from({ length: 16 }, (_, i) => i + 1));
  assert.equal(sixteen?.low, 4);
  assert.equal(sixteen?.high, 13);
});

test("median interval: non-finite values are left out", () => {
  assert.deepEqual(
    medianInterval([1, Number.NaN, 2, 3, Number.POSITIVE_INFINITY, 4, 5, 6]),
    medianInterval([1, 2, 3, 4, 5, 6]),
  );
});

test("pairs alternate which side runs first, go over every route, and report the ratios' median", async () => {
  const routes: { name: RouteName }[] = [{ name: "get-json" }, { name: "sse-stream" }];
  const calls: string[] = [];
  // bare does 1000 req/s; the gateway 800 on get-json and 1200 on sse-stream, plus the pair's
  // index, so every pair's ratio differs.
  const { section, errors } = await measurePairs({
    pairs: 6,
    routes,
    bare: "bare",
    targets: ["gw"],
    name: (t) => t,
    durationS: 2,
    run: async (target, route) => {
      calls.push(`${target}:${route.name}`);
      const pair = Math.floor((calls.length - 1) / 4); // four runs a pair index
      const rps = target === "bare" ? 1000 : (route.name === "get-json" ? 800 : 1200) + 10 * pair;
      return { rps, errors: target === "gw" && route.name === "sse-stream" ? 1 : 0 };
    },
    log: () => {},
  });
  assert.deepEqual(calls.slice(0, 8), [
    "bare:get-json",
    "gw:get-json",
    "bare:sse-stream",
    "gw:sse-stream",
    "gw:get-json",
    "bare:get-json",
    "gw:sse-stream",
    "bare:sse-stream",
  ]);
  assert.equal(calls.length, 6 * 2 * 2);
  assert.equal(errors, 6);
  const data = section.data as {
    summaries: { route: string; pairs: number; medianRatio: number; interval?: unknown }[];
    pairs: { first: string }[];
  };
  assert.deepEqual(data.pairs.map((p) => p.first).slice(0, 4), [
    "bare",
    "bare",
    "target",
    "target",
  ]);
  const [get, sse] = data.summaries;
  assert.equal(get?.route, "get-json");
  assert.equal(get?.pairs, 6);
  // get-json ratios 0.80, 0.81, ..., 0.85 (index 0..5): median 0.825.
  assert.ok(Math.abs((get?.medianRatio ?? 0) - 0.825) < 1e-9);
  assert.equal(sse?.route, "sse-stream");
  assert.ok(Math.abs((sse?.medianRatio ?? 0) - 1.225) < 1e-9);
  assert.ok(get?.interval !== undefined);
  // Halves: pairs 0-2 (0.80, 0.81, 0.82) and 3-5 (0.83, 0.84, 0.85).
  const halves = (get as { halves?: { first: number; second: number } }).halves;
  assert.ok(Math.abs((halves?.first ?? 0) - 0.81) < 1e-9);
  assert.ok(Math.abs((halves?.second ?? 0) - 0.84) < 1e-9);
  assert.match(
    section.lines[0] ?? "",
    /^get-json +gw ÷ bare: median 0\.82, 96\.9% CI 0\.80-0\.85 \(6 pairs; medians 825 \/ 1000 req\/s; halves 0\.81 then 0\.84\)$/,
  );
});

test("pairs: no halves below four pairs, the middle pair of an odd count in the second", async () => {
  const summaryOf = async (count: number) => {
    let runs = 0;
    const { section } = await measurePairs({
      pairs: count,
      routes: [{ name: "get-json" as RouteName }],
      bare: "bare",
      targets: ["gw"],
      name: (t) => t,
      durationS: 1,
      // The pair's index + 1 over 10: ratios 0.1, 0.2, ...
      run: async (target) => ({
        rps: target === "bare" ? 10 : ++runs,
        errors: 0,
      }),
      log: () => {},
    });
    return section.data as { summaries: { halves?: { first: number; second: number } }[] };
  };
  assert.equal((await summaryOf(3)).summaries[0]?.halves, undefined);
  const five = (await summaryOf(5)).summaries[0]?.halves;
  assert.ok(Math.abs((five?.first ?? 0) - 0.15) < 1e-9); // 0.1, 0.2
  assert.ok(Math.abs((five?.second ?? 0) - 0.4) < 1e-9); // 0.3, 0.4, 0.5
});
