import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { JobLog } from '../common/job-log.js';
import { ProcessAssetInput } from '../common/jobs.js';
import {
  FAILURE_TYPES,
  type LodResult,
  type OptimizeResult,
  type PackageResult,
  PipelineSettings,
  type PipelineActivities,
  type Stage,
  type StageRequest,
  STAGES,
  type TextureResult,
  type ValidationSummary,
} from '../common/pipeline.js';
import type { AssetStats } from '../common/jobs.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { removeTempFiles } from './asset-io.js';
import { ProgressReporter } from './progress-reporter.js';
import type { StageJob } from './stage-job.js';
import { runStageThread, StageFailedError } from './stage-thread.js';
import { discardLods } from './stages/lods.js';
import { discardOptimize } from './stages/optimize.js';
import { discardPackage } from './stages/package.js';
import { discardTextures } from './stages/textures.js';
import {
  AssetStatsSchema,
  LodResultSchema,
  OptimizeResultSchema,
  PackageResultSchema,
  TextureResultSchema,
  ValidationSummarySchema,
  workFiles,
} from './work-files.js';

/** Stages of a job as the artist sees them, in order. */
export const JOB_STAGES = STAGES;

export interface HpcActivityDeps {
  jobLog: JobLog;
  storage: AssetStorage;
  progressMaxRate: number;
  onDrop?: (err: unknown) => void;
  /** Called when Redis acknowledged a progress publish: `producedAt` is the report's ts (for the publish-lag metric). */
  onPublished?: (seq: number, producedAt: number) => void;
  /** How often a running stage heartbeats even when its thread has nothing new to say. */
  heartbeatIntervalMs?: number;
}

const StageRequestSchema = z.object({ input: ProcessAssetInput, settings: PipelineSettings });
const PreviousHeartbeat = z.object({ checkpoint: z.unknown().optional() });
const JobRequest = z.object({ jobId: z.string().min(1) });

/** The job an activity works for: its workflow's id. */
function jobIdOf(ctx: Context): string {
  const id = ctx.info.workflowExecution?.workflowId;
  if (!id) throw ApplicationFailure.nonRetryable('Asset activities run only inside a processAsset workflow', 'MisconfiguredActivity');
  return id;
}

/** Finds the file the asset is opened from: the one .glb or .gltf among the uploaded files. */
export function mainFileOf(files: ProcessAssetInput['files']): string {
  const mains = files.filter((f) => /\.(glb|gltf)$/i.test(f.name));
  if (mains.length !== 1) {
    throw ApplicationFailure.nonRetryable(
      mains.length === 0
        ? 'The upload has no .glb or .gltf file. Upload the model file together with its textures.'
        : `The upload has ${mains.length} model files (${mains.map((f) => f.name).join(', ')}); upload one asset per job.`,
      FAILURE_TYPES.INVALID_ASSET,
    );
  }
  return mains[0]!.name;
}

/** Stages that read the upload itself and so need it laid out in the work folder. */
const READS_UPLOAD: ReadonlySet<Stage> = new Set(['inspect', 'validate', 'optimize', 'package']);

/**
 * Compute activities: run only by the HPC worker, on the `hpc` task queue. Each stage runs its CPU work
 * in a worker thread, reports progress through a ProgressReporter (heartbeat + Redis mirror), resumes
 * from its heartbeat checkpoint when retried, and on cancellation stops the thread and removes what it
 * half-wrote.
 */
export function createHpcActivities(deps: HpcActivityDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 2000;

  async function runStage<T>(
    stage: Stage,
    rawRequest: StageRequest,
    result: z.ZodType<T>,
    discard: (job: StageJob) => Promise<void>,
  ): Promise<T> {
    const ctx = Context.current();
    const jobId = jobIdOf(ctx);
    const request = StageRequestSchema.safeParse(rawRequest);
    if (!request.success) {
      // The workflow sent something the contract does not allow: no retry will change it.
      throw ApplicationFailure.nonRetryable(`${stage}: malformed stage request: ${request.error.message}`, FAILURE_TYPES.INVALID_REQUEST);
    }
    const { input, settings } = request.data;
    const mainFile = mainFileOf(input.files);
    const previous = PreviousHeartbeat.safeParse(ctx.info.heartbeatDetails);
    const checkpoint = previous.success ? previous.data.checkpoint : undefined;

    const reporter = new ProgressReporter<unknown>({
      jobId,
      owner: input.owner,
      stages: STAGES,
      attempt: ctx.info.attempt,
      jobLog: deps.jobLog,
      // Until this attempt records a checkpoint of its own, keep sending the previous attempt's, so an
      // attempt that dies early does not lose the work done before it.
      heartbeat: (details) =>
        ctx.heartbeat(details.checkpoint === undefined && checkpoint !== undefined ? { ...details, checkpoint } : details),
      maxRate: deps.progressMaxRate,
      onDrop: deps.onDrop,
      onPublished: deps.onPublished,
    });
    reporter.startStage(stage, 1, 'steps', checkpoint === undefined ? `Starting ${stage}` : `Resuming ${stage}`);

    const workDir = await deps.storage.workDir(jobId);
    const job: StageJob = {
      stage,
      jobId,
      assetName: input.assetName,
      mainFile,
      fileNames: input.files.map((f) => f.name),
      inputDir: READS_UPLOAD.has(stage) ? await deps.storage.materializeInputs(jobId, input.files) : workFiles.inputDir(workDir),
      workDir,
      outputDir: stage === 'package' ? await deps.storage.outputDir(jobId) : '',
      settings,
      checkpoint,
    };

    let done = 0;
    // The thread may spend minutes in one library call; the event loop is free, so heartbeat from here.
    const ticker = setInterval(() => reporter.update(done), heartbeatIntervalMs);
    try {
      const output = await runStageThread(
        job,
        {
          onStart: (total, unit, message) => reporter.startStage(stage, total, unit, message),
          onProgress: (value, message, next) => {
            done = value;
            reporter.update(value, message, next);
          },
        },
        ctx.cancellationSignal,
      );
      reporter.finishStage();
      await reporter.flush();
      return result.parse(output);
    } catch (err) {
      reporter.close();
      if (ctx.cancellationSignal.aborted) {
        // Asked to stop: drop the stage's partial work. Timed out or shutting down: keep finished,
        // checkpointed pieces for the retry and drop only half-written files.
        await (
          ctx.cancellationDetails?.cancelRequested
            ? discard(job)
            : Promise.all([removeTempFiles(workDir), job.outputDir ? removeTempFiles(job.outputDir) : undefined])
        ).catch((cleanupErr: unknown) => {
          // The cancellation must still be reported; cleanupJob removes the whole work folder later anyway.
          log.warn('Could not remove a cancelled stage’s partial files', { jobId, stage, error: String(cleanupErr) });
        });
        throw err;
      }
      throw toActivityFailure(err);
    } finally {
      clearInterval(ticker);
    }
  }

  const activities = {
    /** Reads the uploaded asset and counts its meshes, vertices, triangles, materials and textures. */
    async inspectAsset(request: StageRequest): Promise<AssetStats> {
      return runStage('inspect', request, AssetStatsSchema, keepNothing);
    },
    /** Runs glTF-Validator; errors fail the job as InvalidAsset, warnings are returned. */
    async validateAsset(request: StageRequest): Promise<ValidationSummary> {
      return runStage('validate', request, ValidationSummarySchema, keepNothing);
    },
    /** dedup, weld, prune, resample, reorder (+ quantize) into the work folder's optimized.glb. */
    async optimizeAsset(request: StageRequest): Promise<OptimizeResult> {
      return runStage('optimize', request, OptimizeResultSchema, (job) => discardOptimize(job.workDir));
    },
    /** Simplified copies at settings.lodRatios. */
    async buildLods(request: StageRequest): Promise<LodResult[]> {
      return runStage('lods', request, z.array(LodResultSchema), (job) => discardLods(job.workDir));
    },
    /** Resized, re-encoded textures, resumable per texture. */
    async processTextures(request: StageRequest): Promise<TextureResult[]> {
      return runStage('textures', request, z.array(TextureResultSchema), (job) => discardTextures(job.workDir));
    },
    /** The deliverable GLBs and report.json in the job's output folder, each validated. */
    async packageOutputs(request: StageRequest): Promise<PackageResult> {
      return runStage('package', request, PackageResultSchema, (job) => discardPackage(job.outputDir));
    },
    async cleanupJob(request: { jobId: string; keepOutputs: boolean }): Promise<void> {
      const { jobId, keepOutputs } = JobRequest.extend({ keepOutputs: z.boolean() }).parse(request);
      await deps.storage.removeWork(jobId);
      if (!keepOutputs) await deps.storage.removeOutputs(jobId);
    },
    async deleteOutputs(request: { jobId: string }): Promise<void> {
      await deps.storage.removeOutputs(JobRequest.parse(request).jobId);
    },
  } satisfies PipelineActivities;
  return activities;
}

/** Inspect and validate write nothing a cancellation must remove. */
async function keepNothing(): Promise<void> {}

/** Maps a stage's failure to what Temporal should do with it: never retry bad input, retry the rest. */
function toActivityFailure(err: unknown): unknown {
  if (err instanceof StageFailedError && err.failureType) {
    return ApplicationFailure.create({ message: err.message, type: err.failureType, nonRetryable: true, details: err.details });
  }
  return err;
}

export type HpcActivities = ReturnType<typeof createHpcActivities>;
