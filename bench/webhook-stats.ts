// Percentile summaries shared by the benchmarks (webhook*, sidecar's delay
// accuracy). Every sample is kept and sorted (at most a few tens of thousands
// per run), so percentiles are exact, not histogram buckets.

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/**
 * The item whose key is the median (the lower one of an even count): a whole
 * round of a bench, so its figures stay together, rather than each field's
 * median from different rounds. NaN-free keys; undefined when empty.
 */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T | undefined {
  return [...items].sort((a, b) => key(a) - key(b))[(items.length - 1) >> 1];
}

/** `n` to `digits` decimals; by default milliseconds to microseconds, finer digits being noise. */
export const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** The median of numbers (the lower one of an even count, as medianBy). */
export const median = (xs: readonly number[]): number => medianBy(xs, (x) => x)!;

export interface Summary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    p999Ms: round(percentile(sorted, 99.9)),
    maxMs: round(sorted.length ? sorted[sorted.length - 1]! : NaN),
  };
}
