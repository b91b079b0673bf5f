import type { BenchContext } from '../lib/bench-context.js';
import type { BenchResult } from '../lib/report.js';
export async function runUploadBenchmark(_ctx: BenchContext): Promise<BenchResult> {
  return { id: 'upload', title: '6. Upload', status: 'skipped', reason: 'todo', rows: [], details: {}, notes: [] };
}
