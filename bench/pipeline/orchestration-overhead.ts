import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import type { BenchContext } from '../lib/bench-context.js';
import { startCpuMeter } from '../lib/proc-stats.js';
import { row, type BenchResult, type ResultRow } from '../lib/report.js';
import { spawnNode, type BenchChild } from '../lib/rpc.js';
import { repeated } from '../lib/stats.js';
import type { DirectRun } from './direct-pipeline.js';
import { OwnerSocket, startPipelineStack, submitJob, type PipelineStack } from './pipeline-stack.js';
import { withHpcProcessEnv } from '../../worker/hpc-process-env.js';

/** The shared sample assets, used in place. */
export const SHARED_ASSETS = path.resolve(PROJECT_ROOT, '..', 'shared', 'assets');
const OPTIONS = { preset: 'game-ready' } as const;
const JOB_TIMEOUT_MS = 600_000;

/** The processes whose pid is known (a dev server the SDK started itself has none here). */
function definedPids(pids: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(pids).filter((e): e is [string, number] => e[1] !== undefined));
}

function formatCpu(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([name, ms]) => `${name} ${ms.toFixed(0)}`)
    .join(', ');
}

function median(values: number[]): number {
  return repeated(values).median;
}

/** Starts the in-process runner of the six stages (bench/pipeline/direct-pipeline.ts) as its own process. */
export function startDirectPipeline(ctx: BenchContext): BenchChild {
  // The HPC worker's own process, so its environment too.
  return spawnNode('direct-pipeline', 'bench/pipeline/direct-pipeline.ts', { env: withHpcProcessEnv(ctx.infra.env) });
}

/**
 * Benchmark 4 alone (`--only overhead`): its own product stack and in-process runner, without the
 * minutes-long compute benchmark that `pipeline` runs first. For measuring orchestration changes.
 */
export async function runOrchestrationOverheadAlone(ctx: BenchContext): Promise<BenchResult> {
  const direct = startDirectPipeline(ctx);
  let stack: PipelineStack | null = null;
  try {
    stack = await startPipelineStack(ctx.infra);
    return await runOrchestrationOverhead(ctx, stack, direct);
  } finally {
    await Promise.all([stack?.stop(), direct.stop()]);
  }
}

/**
 * Saturated throughput against raw compute (issue 22): a TwoCubes job's ~0.2 s of compute is the same order
 * as the orchestration's own CPU per job, so its bar is lower than a real job's.
 */
const THROUGHPUT_TARGET: Record<string, { text: string; met: (m: number, ratio: number) => boolean }> = {
  'TwoCubes.glb': { text: '≥ 0.8 of raw', met: (_m, ratio) => ratio >= 0.8 },
  'DamagedHelmet.glb': { text: '≥ 0.95 of raw', met: (_m, ratio) => ratio >= 0.95 },
};

/** One saturated-throughput measurement: N concurrent jobs of one asset, end to end and raw. */
interface ThroughputRun {
  asset: string;
  jobs: number;
  endToEndPerMinute: number;
  rawPerMinute: number;
  endToEndWallMs: number;
  rawWallMs: number;
  /** CPU milliseconds per job of each process during the saturated run (end to end) and the direct run (raw). */
  endToEndCpuMsPerJob: Record<string, number>;
  rawCpuMsPerJob: Record<string, number>;
}

/**
 * Benchmark 4: what Temporal, the workers, Redis, the API and the socket add to a job. End to end is
 * upload accepted (the 202) → `completed` on the owner's socket; raw compute is the same six stages run
 * directly in one process. Throughput: N concurrent jobs with the HPC queue saturated (slots = cores)
 * against the same N run directly with the same concurrency: TwoCubes (compute ~0.1 s, so it shows the
 * orchestration's own cost) and, outside smoke runs, DamagedHelmet (seconds of compute, a real job).
 */
export async function runOrchestrationOverhead(ctx: BenchContext, stack: PipelineStack, direct: BenchChild): Promise<BenchResult> {
  // TwoCubes takes ~0.1 s, so more samples cost little; a stage thread is replaced every 25 stages (about
  // a second of module loading, in both paths), and with ten samples that outlier does not move the median.
  const sequential: Record<string, number> = { 'TwoCubes.glb': ctx.smoke ? 1 : 10, 'DamagedHelmet.glb': ctx.smoke ? 1 : 3 };
  const assets = Object.keys(sequential);
  const concurrent: Record<string, number> = ctx.smoke ? { 'TwoCubes.glb': 4 } : { 'TwoCubes.glb': 24, 'DamagedHelmet.glb': 6 };
  let socket: OwnerSocket | null = null;
  const hpcSlots = stack.hpcSlots;
  const perRepeat: { asset: string; endToEndMs: number[]; rawMs: number[] }[][] = [];
  const throughput: ThroughputRun[][] = [];
  try {
    socket = await OwnerSocket.open(stack.api.wsUrl, ctx.infra.tokenFor('bench'));
    const token = ctx.infra.tokenFor('bench');
    const endToEnd = async (file: string): Promise<number> => {
      const { jobId, acceptedAt } = await submitJob(stack.api.url, token, [file], OPTIONS);
      const endedAt = await socket!.terminal(jobId, JOB_TIMEOUT_MS);
      const event = socket!.eventOf(jobId, endedAt);
      if (event !== 'completed') throw new Error(`${path.basename(file)} job ended ${event ?? 'unknown'}, not completed`);
      return endedAt - acceptedAt;
    };
    const raw = (file: string, jobs: number, concurrency: number) =>
      direct.call<DirectRun>('run', { files: [file], options: OPTIONS, jobs, concurrency }, JOB_TIMEOUT_MS * 2);
    // On a small machine the orchestration's own CPU competes with the compute: where each job's goes.
    const infraPids = {
      redis: ctx.infra.redis.process.child.pid,
      ...(ctx.infra.temporal.process ? { temporal: ctx.infra.temporal.process.child.pid } : {}),
    };
    const stackPids = { api: stack.api.process.pid, orchestrator: stack.orchestrator.pid, hpc: stack.hpc.pid };

    // Warm-up: the first job of each path loads the stage threads' libraries; not what is measured.
    // Smoke warms up on TwoCubes only: DamagedHelmet's warm-up would double its time for no figure that counts.
    for (const asset of ctx.smoke ? assets.slice(0, 1) : assets) {
      const file = path.join(SHARED_ASSETS, asset);
      await endToEnd(file);
      await raw(file, 1, 1);
    }
    for (let r = 0; r < ctx.repeats; r++) {
      const repeat: (typeof perRepeat)[number] = [];
      for (const asset of assets) {
        const file = path.join(SHARED_ASSETS, asset);
        // Alternating, one job each way: both sample the machine as it is at that moment (a shared
        // machine's speed drifts within minutes, which a block of one then a block of the other turns into
        // a difference between the two).
        const endToEndMs: number[] = [];
        const rawMs: number[] = [];
        for (let i = 0; i < sequential[asset]!; i++) {
          endToEndMs.push(await endToEnd(file));
          rawMs.push(...(await raw(file, 1, 1)).jobs.map((j) => j.totalMs));
        }
        ctx.log(
          `orchestration: ${asset} end to end ${endToEndMs.map((v) => v.toFixed(0)).join(',')} ms, raw ${rawMs.map((v) => v.toFixed(0)).join(',')} ms`,
        );
        repeat.push({ asset, endToEndMs, rawMs });
      }
      perRepeat.push(repeat);

      const runs: ThroughputRun[] = [];
      for (const [asset, jobs] of Object.entries(concurrent)) {
        const file = path.join(SHARED_ASSETS, asset);
        const perJob = (cpu: Record<string, { cpuSeconds: number }>) =>
          Object.fromEntries(Object.entries(cpu).map(([name, c]) => [name, (c.cpuSeconds * 1000) / jobs]));
        const endToEndCpu = startCpuMeter(definedPids({ ...infraPids, ...stackPids }));
        const t0 = performance.now();
        const durations = await Promise.all(Array.from({ length: jobs }, () => endToEnd(file)));
        const endToEndWallMs = performance.now() - t0;
        const endToEndCpuMsPerJob = perJob(endToEndCpu());
        const rawCpu = startCpuMeter(definedPids({ ...infraPids, direct: direct.pid }));
        const rawRun = await raw(file, jobs, hpcSlots);
        const rawCpuMsPerJob = perJob(rawCpu());
        runs.push({
          asset,
          jobs,
          endToEndCpuMsPerJob,
          rawCpuMsPerJob,
          endToEndWallMs,
          rawWallMs: rawRun.wallMs,
          endToEndPerMinute: (jobs / endToEndWallMs) * 60_000,
          rawPerMinute: (jobs / rawRun.wallMs) * 60_000,
        });
        ctx.log(
          `orchestration: ${jobs} concurrent ${asset}: end to end ${endToEndWallMs.toFixed(0)} ms (slowest job ${Math.max(...durations).toFixed(0)} ms), raw ${rawRun.wallMs.toFixed(0)} ms; ` +
            `CPU ms per job, end to end ${formatCpu(endToEndCpuMsPerJob)}; raw ${formatCpu(rawCpuMsPerJob)}`,
        );
      }
      throughput.push(runs);
    }
  } finally {
    socket?.close();
  }

  const rows: ResultRow[] = [];
  for (const asset of assets) {
    const of = perRepeat.map((rep) => rep.find((a) => a.asset === asset)!);
    const e2e = of.map((a) => median(a.endToEndMs));
    const raw = of.map((a) => median(a.rawMs));
    rows.push(row('job time, end to end', asset, 'ms', e2e, { name: 'raw compute (in-process)', values: raw }));
    rows.push(
      row(
        'orchestration overhead (end to end − raw)',
        asset,
        'ms',
        e2e.map((v, i) => v - raw[i]!),
        undefined,
        // Issue 22's target is for TwoCubes, whose compute is small enough to show the orchestration itself.
        asset === 'TwoCubes.glb' ? { text: '≤ 150 ms', met: (m) => m <= 150 } : undefined,
      ),
    );
  }
  const sum = (cpu: Record<string, number>) => Object.values(cpu).reduce((a, b) => a + b, 0);
  for (const [asset, jobs] of Object.entries(concurrent)) {
    const of = throughput.map((runs) => runs.find((t) => t.asset === asset)!);
    const scale = `${jobs} × ${asset.replace(/\.glb$/, '')}, ${hpcSlots} HPC slots`;
    rows.push(
      row(
        'throughput, HPC queue saturated',
        scale,
        'jobs/min',
        of.map((t) => t.endToEndPerMinute),
        { name: 'raw compute, same concurrency', values: of.map((t) => t.rawPerMinute) },
        THROUGHPUT_TARGET[asset],
      ),
    );
    rows.push(
      row(
        'CPU per job, all processes, HPC queue saturated',
        scale,
        'ms',
        of.map((t) => sum(t.endToEndCpuMsPerJob)),
        { name: 'raw compute (runner + Redis + Temporal idle)', values: of.map((t) => sum(t.rawCpuMsPerJob)) },
      ),
    );
  }
  return {
    id: 'orchestration-overhead',
    title: '4. Orchestration overhead',
    status: 'ok',
    rows,
    details: { preset: OPTIONS.preset, sequentialJobs: sequential, perRepeat, throughput },
    notes: [
      `end to end = upload 202 → \`completed\` on the owner's socket (real API, orchestrator and HPC workers, Temporal dev server, Redis); raw = the six HPC activities called in order in one process through MockActivityEnvironment; median of ${assets.map((a) => `${sequential[a]} ${a}`).join(' and ')} sequential jobs each way, alternating (one end to end, one raw), after one warm-up job each; the API plans without the turntable (TURNTABLES=false), as the raw run.`,
      'CPU per job = CPU time of each process (/proc) during the saturated run ÷ jobs; end to end counts Temporal, Redis, API and both workers, raw counts the in-process runner, Redis and the idle Temporal server.',
    ],
  };
}
