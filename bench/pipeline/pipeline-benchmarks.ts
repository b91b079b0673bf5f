import type { BenchContext } from '../lib/bench-context.js';
import type { BenchResult } from '../lib/report.js';
export async function runPipelineBenchmarks(_ctx: BenchContext): Promise<BenchResult[]> {
  return [];
}
