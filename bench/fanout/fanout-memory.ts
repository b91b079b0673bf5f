import type { BenchContext } from '../lib/bench-context.js';
import type { BenchResult } from '../lib/report.js';
export async function runFanoutBenchmark(_ctx: BenchContext): Promise<BenchResult> {
  return { id: 'fanout', title: '3. Fan-out', status: 'skipped', reason: 'todo', rows: [], details: {}, notes: [] };
}
