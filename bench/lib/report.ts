import { fmt, fmtRepeated, ratio, repeated, type Repeated } from './stats.js';

/**
 * One line of the results table: a figure of the project (median over repeats, with its spread),
 * beside the same figure of the floor or peer measured in the same run, and their ratio.
 */
export interface ResultRow {
  metric: string;
  /** Load the figure was measured at, e.g. "100 jobs × 10 Hz". */
  scale: string;
  unit: string;
  value: Repeated;
  /** What the figure is compared with in the same run (the bare floor, BullMQ, gltfpack…). */
  reference?: { name: string; value: Repeated };
  /** value / reference per repeat, summarised; present when there is a reference. */
  ratio?: Repeated;
  /** Human-readable target, e.g. "≤ 2.5 ms and ≤ 2.5× floor". */
  target?: string;
  /** Whether the median met the target; undefined when there is none. */
  met?: boolean;
}

export type BenchStatus = 'ok' | 'skipped' | 'failed';

export interface BenchResult {
  id: string;
  title: string;
  status: BenchStatus;
  /** Why it was skipped or how it failed. */
  reason?: string;
  rows: ResultRow[];
  /** Raw per-repeat measurements and anything else worth keeping in the JSON. */
  details: Record<string, unknown>;
  notes: string[];
}

/** Builds a row from per-repeat values, pairing each repeat with the reference of the same repeat. */
export function row(
  metric: string,
  scale: string,
  unit: string,
  values: number[],
  reference?: { name: string; values: number[] },
  target?: { text: string; met: (median: number, ratioMedian: number) => boolean },
): ResultRow {
  const value = repeated(values);
  const result: ResultRow = { metric, scale, unit, value };
  if (reference) {
    result.reference = { name: reference.name, value: repeated(reference.values) };
    result.ratio = repeated(values.map((v, i) => ratio(v, reference.values[i] ?? Number.NaN)));
  }
  if (target) {
    result.target = target.text;
    result.met = target.met(value.median, result.ratio?.median ?? Number.NaN);
  }
  return result;
}

/** The results as a Markdown table (also printed to the terminal). */
export function markdownTable(results: BenchResult[]): string {
  const lines = [
    '| benchmark | metric | scale | value (median, min–max) | reference (same run) | ratio | target | met |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const result of results) {
    if (result.status !== 'ok') {
      lines.push(`| ${result.title} | ${result.status}: ${result.reason ?? ''} | | | | | | |`);
      continue;
    }
    for (const r of result.rows) {
      const ref = r.reference ? `${r.reference.name}: ${fmtRepeated(r.reference.value, r.unit)}` : '';
      const rat = r.ratio ? `${fmtRepeated(r.ratio)}×` : '';
      const met = r.met === undefined ? '' : r.met ? 'yes' : '**no**';
      lines.push(
        `| ${result.title} | ${r.metric} | ${r.scale} | ${fmtRepeated(r.value, r.unit)} | ${ref} | ${rat} | ${r.target ?? ''} | ${met} |`,
      );
    }
  }
  return lines.join('\n');
}

export { fmt };
