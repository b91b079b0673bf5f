/** Summary statistics for benchmark samples. Percentiles use the nearest-rank method on sorted samples. */

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of ascending `sorted` (q in 0..1); NaN for no samples. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** p50/p95/p99/max of latency samples in milliseconds. */
export function summarizeLatency(samples: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** A figure over repeated runs: the median, and the spread as min..max. */
export interface Repeated {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function repeated(runs: number[]): Repeated {
  const finite = runs.filter((v) => Number.isFinite(v));
  const sorted = [...finite].sort((a, b) => a - b);
  return {
    median: sorted.length ? percentile(sorted, 0.5) : Number.NaN,
    min: sorted.length ? sorted[0]! : Number.NaN,
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    runs,
  };
}

/** Ratio a/b, NaN when b is not a positive number. */
export function ratio(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? a / b : Number.NaN;
}

/** Rounds for display: 3 significant decimals below 10, 1 decimal below 1000, integers above. */
export function fmt(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  const text = abs < 10 ? value.toFixed(abs < 1 ? 3 : 2) : abs < 1000 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
  return unit ? `${text} ${unit}` : text;
}

/** "median (min–max)" for a repeated figure. */
export function fmtRepeated(r: Repeated, unit = ''): string {
  if (r.runs.length <= 1) return fmt(r.median, unit);
  return `${fmt(r.median, unit)} (${fmt(r.min)}–${fmt(r.max)})`;
}
