import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { z } from 'zod';
import { createHpcActivities } from '../../activities/hpc-activities.js';
import { JobLog } from '../../common/job-log.js';
import { JobOptions, type ProcessAssetInput } from '../../common/jobs.js';
import { resolveSettings } from '../../common/pipeline.js';
import { BUILTIN_STAGES, type BuiltinStageName, plannedStages, planStages } from '../../common/stages.js';
import { createRedis } from '../../common/redis.js';
import { LocalStorage } from '../../storage/local-storage.js';
import { WorkerScratch } from '../../activities/job-scratch.js';
import { memoryOf, resetPeakMemory } from '../lib/proc-stats.js';
import { serveCommands } from '../lib/rpc.js';
import { glbGeometry, glbImageBytes, type GlbGeometry } from './glb-images.js';

/**
 * The raw compute of a job, without orchestration: the six HPC activities of createHpcActivities
 * called in order in this process through MockActivityEnvironment (real stage threads, real
 * ProgressReporter, real JobLog on the run's Redis), with no Temporal server, workflow, API or socket.
 * Run as its own process (`spawnNode`) so its CPU and peak RSS are its own.
 */

const RunArgs = z.object({
  files: z.array(z.string()).min(1),
  options: JobOptions,
  jobs: z.number().int().positive(),
  concurrency: z.number().int().positive(),
});

/** One job's figures: milliseconds per stage and in total, and the deliverables' sizes. */
export interface DirectJob {
  /** Milliseconds of each stage the job ran. */
  stageMs: Partial<Record<BuiltinStageName, number>>;
  /** Peak RSS of this process during each stage, bytes: measured only when jobs run one at a time. */
  stagePeakRss: Partial<Record<BuiltinStageName, number>>;
  totalMs: number;
  /** Deliverables, with the bytes of the images embedded in each GLB (to compare geometry alone) and where its geometry bytes go. */
  outputs: { name: string; bytes: number; kind: string; imageBytes: number; geometry: GlbGeometry | null }[];
}

/** What a `run` command answers. */
export interface DirectRun {
  jobs: DirectJob[];
  /** From the first job's start to the last job's end. */
  wallMs: number;
  /** Peak RSS of this process during the run (VmHWM after a reset), bytes. */
  peakRss: number;
}

const PackageOutputs = z.object({ outputs: z.array(z.object({ name: z.string(), bytes: z.number(), kind: z.string() })) });

const env = z.object({ REDIS_URL: z.string().min(1), DATA_DIR: z.string().min(1) }).parse(process.env);
const storageDir = path.join(env.DATA_DIR, 'direct');
const storage = new LocalStorage(storageDir);
const scratch = await WorkerScratch.open(path.join(env.DATA_DIR, 'direct-scratch'), storage);
const redis = createRedis(env.REDIS_URL, 'publisher');
const activities = createHpcActivities({ jobLog: new JobLog(redis, { ttlSeconds: 600 }), storage, scratch, progressMaxRate: 10 });
// The SDK's per-activity log lines are not what is measured.
const logger = new DefaultLogger('ERROR');

/** The run's peak RSS before the latest per-stage reset of the mark (see runJob). */
let runPeak = 0;

async function runJob(input: ProcessAssetInput, perStageMemory: boolean): Promise<DirectJob> {
  const jobId = `asset-${input.owner}-${randomUUID()}`;
  const env = new MockActivityEnvironment({ workflowExecution: { workflowId: jobId, runId: 'direct' } }, { logger });
  const request = { input, settings: resolveSettings(input.options) };
  const stageMs: Partial<Record<BuiltinStageName, number>> = {};
  const stagePeakRss: Partial<Record<BuiltinStageName, number>> = {};
  const t0 = performance.now();
  let packaged: unknown;
  // The job's own plan (an FBX runs the import first), without the turntable: its cost is Blender's,
  // bounded by PREVIEW_*, and this benchmark measures the glTF pipeline. The benchmarks' API plans the
  // same (TURNTABLES=off, bench/pipeline/pipeline-stack.ts), so both paths run the same stages.
  const plan = planStages(plannedStages(BUILTIN_STAGES, { turntables: false }), {
    preset: input.options.preset,
    fileNames: input.files.map((f) => f.name),
  });
  for (const { name: stage, activity: activityType } of plan) {
    const s0 = performance.now();
    if (perStageMemory) {
      runPeak = Math.max(runPeak, memoryOf(process.pid).peak);
      resetPeakMemory(process.pid);
    }
    const activity = activities[activityType as keyof typeof activities] as (r: typeof request) => Promise<unknown>;
    const result = await env.run(activity, request);
    stageMs[stage as BuiltinStageName] = performance.now() - s0;
    if (perStageMemory) stagePeakRss[stage as BuiltinStageName] = memoryOf(process.pid).peak;
    if (stage === 'package') packaged = result;
  }
  const totalMs = performance.now() - t0;
  // LocalStorage keeps published outputs as files here (storage/job-data.ts): read in place, not copied.
  const outputDir = path.join(storageDir, 'jobs', jobId, 'outputs');
  const outputs = PackageOutputs.parse(packaged).outputs.map((o) => ({
    ...o,
    imageBytes: o.kind === 'glb' ? glbImageBytes(path.join(outputDir, o.name)) : 0,
    geometry: o.kind === 'glb' ? glbGeometry(path.join(outputDir, o.name)) : null,
  }));
  // As the workflow's cleanup does, and so a long run does not fill the disk with work folders.
  await activities.cleanupJob({ jobId, keepOutputs: false });
  return { stageMs, stagePeakRss, totalMs, outputs };
}

serveCommands({
  async run(raw) {
    const args = RunArgs.parse(raw);
    const stored = await Promise.all(
      args.files.map(async (file) => ({ name: path.basename(file), ...(await storage.putUpload(createReadStream(file), 2 ** 40)) })),
    );
    const main = stored.find((f) => /\.(glb|gltf)$/i.test(f.name)) ?? stored[0]!;
    const input: ProcessAssetInput = { owner: 'bench', assetName: main.name, files: stored, options: args.options };
    resetPeakMemory(process.pid);
    runPeak = 0;
    const jobs: DirectJob[] = [];
    let next = 0;
    const t0 = performance.now();
    // `concurrency` jobs at a time, like an HPC worker with that many activity slots.
    await Promise.all(
      Array.from({ length: Math.min(args.concurrency, args.jobs) }, async () => {
        while (next < args.jobs) {
          next++;
          jobs.push(await runJob(input, args.concurrency === 1));
        }
      }),
    );
    return { jobs, wallMs: performance.now() - t0, peakRss: Math.max(runPeak, memoryOf(process.pid).peak) } satisfies DirectRun;
  },
});
