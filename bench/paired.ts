/**
 * Paired throughput: a target's closed-loop req/s over bare Node's, taken as many short
 * back-to-back pairs instead of from the table's few long rounds.
 *
 * On a machine whose speed moves by a factor of two within minutes, the table's `÷bare` (the
 * ratio of two medians over three 10-s runs each, minutes apart) moves by ±0.15 between full
 * runs. Here the two runs of a pair are seconds apart, so both see nearly the same machine;
 * the order within a pair alternates (bare first, then the target first, ...) so neither
 * side always gets the later, warmer or cooler seconds; each pair goes over every route
 * before the next pair begins, so a slow minute hits all routes. The report gives the median
 * of the pairs' ratios with a distribution-free confidence interval for that median.
 */
import { median } from "./latency.ts";
import type { RouteName } from "./routes.ts";
import type { ReportSection } from "./sections.ts";

/** The section's key in the JSON report. */
export const PAIRED_SECTION_ID = "paired-throughput";

/** One closed-loop run of a pair, as the harness measured it. */
export interface PairRun {
  rps: number;
  errors: number;
}

/** One pair: bare Node and the target on one route, one right after the other. */
export interface Pair {
  index: number;
  target: string;
  route: RouteName;
  /** Which of the two ran first. */
  first: "bare" | "target";
  bareRps: number;
  targetRps: number;
  /** targetRps ÷ bareRps. */
  ratio: number;
}

/** The pairs of one target on one route, summarised. */
export interface PairSummary {
  target: string;
  route: RouteName;
  pairs: number;
  medianRatio: number;
  /** Confidence interval of the median ratio; absent when there are too few pairs for one. */
  interval?: MedianInterval;
  medianBareRps: number;
  medianTargetRps: number;
  /**
   * Median ratio of the first half of the pairs and of the second (in the order run; the
   * middle pair of an odd count goes to the second): a machine or process that drifts during
   * the section shows as two different halves, which one median would hide. Absent below 4 pairs.
   */
  halves?: { first: number; second: number };
}

/** A confidence interval for a median: two of the sorted samples. */
export interface MedianInterval {
  low: number;
  high: number;
  /** Its exact coverage (at least the confidence asked for). */
  coverage: number;
}

/**
 * The narrowest interval [x(k), x(n+1-k)] of the sorted samples that covers the median with
 * at least `confidence` whatever the samples' distribution: the number of samples below the
 * true median is Binomial(n, 1/2), so the interval misses it with probability
 * 2·P(B ≤ k-1). Undefined when even [min, max] does not reach `confidence` (fewer than 6
 * samples for 95%). Exact in doubles up to 1,000 samples (0.5^n underflows past 1,074; the
 * harness allows at most 1,000 pairs).
 */
export function medianInterval(
  values: readonly number[],
  confidence = 0.95,
): MedianInterval | undefined {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  let best: MedianInterval | undefined;
  // cdf = P(B ≤ k-1) for the k being tried; start at k = 1.
  let term = 0.5 ** n; // P(B = 0)
  let cdf = term;
  for (let k = 1; 2 * k <= n + 1; k++) {
    const coverage = 1 - 2 * cdf;
    if (coverage < confidence) break;
    best = { low: sorted[k - 1] as number, high: sorted[n - k] as number, coverage };
    term = (term * (n - k + 1)) / k; // P(B = k)
    cdf += term;
  }
  return best;
}

/** What measurePairs is given: targets and routes are the harness's own handles. */
export interface PairedOptions<T, R extends { name: RouteName }> {
  /** Pairs per target and route. */
  pairs: number;
  routes: readonly R[];
  bare: T;
  targets: readonly T[];
  name(target: T): string;
  durationS: number;
  /** Runs one closed-loop measurement of `target` on `route`. */
  run(target: T, route: R): Promise<PairRun>;
  log(line: string): void;
}

/** Runs the pairs; errors are the run errors summed (a pair with errors still counts). */
export async function measurePairs<T, R extends { name: RouteName }>(
  options: PairedOptions<T, R>,
): Promise<{ section: ReportSection; errors: number }> {
  const { routes, targets, name } = options;
  const bare = name(options.bare);
  const pairs: Pair[] = [];
  let errors = 0;
  const runOne = async (target: T, route: R) => {
    const result = await options.run(target, route);
    errors += result.errors;
    return result.rps;
  };
  for (let index = 0; index < options.pairs; index++) {
    const first: Pair["first"] = index % 2 === 0 ? "bare" : "target";
    for (const route of routes) {
      for (const target of targets) {
        let bareRps: number;
        let targetRps: number;
        if (first === "bare") {
          bareRps = await runOne(options.bare, route);
          targetRps = await runOne(target, route);
        } else {
          targetRps = await runOne(target, route);
          bareRps = await runOne(options.bare, route);
        }
        const pair: Pair = {
          index,
          target: name(target),
          route: route.name,
          first,
          bareRps,
          targetRps,
          ratio: targetRps / bareRps,
        };
        pairs.push(pair);
        options.log(
          `pair ${index + 1} ${route.name.padEnd(12)} ${pair.target} ${Math.round(targetRps)} / ${bare} ${Math.round(bareRps)} req/s = ${pair.ratio.toFixed(2)}`,
        );
      }
    }
  }
  const summaries = summarisePairs(
    pairs,
    routes.map((r) => r.name),
    targets.map(name),
  );
  return {
    section: {
      id: PAIRED_SECTION_ID,
      title: `Paired throughput (÷ ${bare}: ${options.pairs} back-to-back pairs of ${options.durationS}-s closed-loop runs per route, order alternating)`,
      lines: formatPairs(summaries, bare),
      data: { bare, durationS: options.durationS, summaries, pairs },
    },
    errors,
  };
}

/** One summary per target and route, in the order given. */
function summarisePairs(
  pairs: readonly Pair[],
  routes: readonly RouteName[],
  targets: readonly string[],
): PairSummary[] {
  const out: PairSummary[] = [];
  for (const route of routes) {
    for (const target of targets) {
      const mine = pairs.filter((p) => p.route === route && p.target === target);
      if (mine.length === 0) continue;
      const ratios = mine.map((p) => p.ratio);
      const half = Math.floor(ratios.length / 2);
      out.push({
        target,
        route,
        pairs: mine.length,
        medianRatio: median(ratios),
        interval: medianInterval(ratios),
        medianBareRps: median(mine.map((p) => p.bareRps)),
        medianTargetRps: median(mine.map((p) => p.targetRps)),
        halves:
          ratios.length < 4
            ? undefined
            : { first: median(ratios.slice(0, half)), second: median(ratios.slice(half)) },
      });
    }
  }
  return out;
}

/** The section's printed lines. */
function formatPairs(summaries: readonly PairSummary[], bare: string): string[] {
  return summaries.map((s) => {
    const interval =
      s.interval === undefined
        ? "too few pairs for a 95% interval"
        : `${Math.round(s.interval.coverage * 1000) / 10}% CI ${s.interval.low.toFixed(2)}-${s.interval.high.toFixed(2)}`;
    const halves =
      s.halves === undefined
        ? ""
        : `; halves ${s.halves.first.toFixed(2)} then ${s.halves.second.toFixed(2)}`;
    return (
      `${s.route.padEnd(12)} ${s.target} ÷ ${bare}: median ${s.medianRatio.toFixed(2)}, ${interval} ` +
      `(${s.pairs} pair${s.pairs === 1 ? "" : "s"}; medians ${Math.round(s.medianTargetRps)} / ${Math.round(s.medianBareRps)} req/s${halves})`
    );
  });
}
