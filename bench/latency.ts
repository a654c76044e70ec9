/**
 * Latency samples and percentiles for the Node load generators.
 *
 * Samples are kept exactly (not in a lossy histogram) because the runs are short and bounded:
 * at most `capacity` values, 8 bytes each. Percentiles use the nearest-rank method, the same
 * definition wrk uses, so the two generators' figures are comparable.
 */

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** A bounded, preallocated store of latency samples (milliseconds). */
export class LatencyRecorder {
  private samples: Float64Array;
  private size = 0;
  /** Samples offered after the store was full; reported so a truncated run is visible. */
  dropped = 0;

  constructor(capacity: number) {
    this.samples = new Float64Array(Math.max(1, Math.floor(capacity)));
  }

  record(ms: number): void {
    if (this.size < this.samples.length) this.samples[this.size++] = ms;
    else this.dropped++;
  }

  get count(): number {
    return this.size;
  }

  /** Sorts a copy of the samples and returns the summary; undefined when nothing was recorded. */
  summary(): LatencySummary | undefined {
    if (this.size === 0) return undefined;
    const sorted = this.samples.slice(0, this.size).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: this.size,
      meanMs: sum / this.size,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      p999Ms: percentile(sorted, 99.9),
      maxMs: sorted[this.size - 1] as number,
    };
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array | readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Median of a list of numbers (mean of the two middle values for even lengths); NaN for none. */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1
    ? (finite[mid] as number)
    : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
}
