import type { BenchContext } from '../lib/bench-context.js';
import type { BenchResult } from '../lib/report.js';
import { runCancelLatency } from './cancel-latency.js';
import { runCompute } from './compute.js';
import { runOrchestrationOverhead, startDirectPipeline } from './orchestration-overhead.js';
import { startPipelineStack, type PipelineStack } from './pipeline-stack.js';

/** A benchmark that threw is reported as failed with its reason, and the others still run. */
async function guarded(ctx: BenchContext, id: string, title: string, run: () => Promise<BenchResult>): Promise<BenchResult> {
  try {
    return await run();
  } catch (err) {
    ctx.log(`${id} failed: ${(err as Error).stack ?? String(err)}`);
    return { id, title, status: 'failed', reason: (err as Error).message.split('\n')[0], rows: [], details: {}, notes: [] };
  }
}

/**
 * Benchmarks 4 (orchestration overhead), 5 (cancel latency) and 7 (compute), on the real pipeline.
 * 4 and 5 share one product stack (API + both workers); 4 and 7 share the in-process runner. Compute
 * runs first, alone, so nothing else competes with its stage timings.
 */
export async function runPipelineBenchmarks(ctx: BenchContext): Promise<BenchResult[]> {
  const direct = startDirectPipeline(ctx);
  let stack: PipelineStack | null = null;
  try {
    const compute = await guarded(ctx, 'compute', '7. Compute', () => runCompute(ctx, direct));
    stack = await startPipelineStack(ctx.infra);
    const started = stack;
    const overhead = await guarded(ctx, 'orchestration-overhead', '4. Orchestration overhead', () =>
      runOrchestrationOverhead(ctx, started, direct),
    );
    const cancel = await guarded(ctx, 'cancel-latency', '5. Cancel latency', () => runCancelLatency(ctx, started));
    return [overhead, cancel, compute];
  } finally {
    await Promise.all([stack?.stop(), direct.stop()]);
  }
}

/** Benchmark 7 alone (`--only compute`): its in-process runner without 4 and 5's product stack. */
export async function runComputeBenchmark(ctx: BenchContext): Promise<BenchResult[]> {
  const direct = startDirectPipeline(ctx);
  try {
    return [await guarded(ctx, 'compute', '7. Compute', () => runCompute(ctx, direct))];
  } finally {
    await direct.stop();
  }
}

/** Benchmark 5 alone (`--only cancel`): its product stack without the compute and overhead runs. */
export async function runCancelBenchmark(ctx: BenchContext): Promise<BenchResult[]> {
  const stack = await startPipelineStack(ctx.infra);
  try {
    return [await guarded(ctx, 'cancel-latency', '5. Cancel latency', () => runCancelLatency(ctx, stack))];
  } finally {
    await stack.stop();
  }
}
