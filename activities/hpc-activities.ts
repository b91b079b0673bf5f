import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { type AssetLimits, DEFAULT_ASSET_LIMITS } from '../common/config.js';
import type { JobLog } from '../common/job-log.js';
import { StageRequestSchema, type ProcessAssetInput } from '../common/jobs.js';
import { failureOf, FAILURES, isStorageError } from '../common/failures.js';
import { MODEL_FILE, MODEL_FORMATS_IN_WORDS, needsImport } from '../common/model-files.js';
import type { PipelineActivities, StageRequest } from '../common/pipeline.js';
import { BUILTIN_STAGES, type StageDescriptor, stageNamesOf } from '../common/stages.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { removeTempFiles } from './asset-io.js';
import type { HeartbeatPacer } from './heartbeat-pacer.js';
import { HEARTBEAT_INTERVAL_MS, ProgressReporter } from './progress-reporter.js';
import { StallWatch } from './stall-watch.js';
import type { StopHints } from './stop-hints.js';
import { stallChangedSignal } from '../common/signals.js';
import type { StageJob } from './stage-job.js';
import { type BlenderRuntime, DEFAULT_TURNTABLE, findBlender, type TurntableConfig } from './tools/blender.js';
import type { WorkerScratch } from './job-scratch.js';
import { runStageThread, StageFailedError, type StageThreadEvents } from './stage-thread.js';
import { processStageModule, runProcessStage } from './process-stage.js';
import { importedUpload } from './stages/import.js';
import { loadStageModule, type StageModule } from './stage-module.js';

/**
 * Defaults of HpcActivityDeps' tunables, in one object as ws (`WebSocketServer` options) and the Temporal
 * SDK (`WorkerOptions`) keep theirs; each option's JSDoc names its default.
 */
export const HPC_ACTIVITY_DEFAULTS = {
  heartbeatIntervalMs: 2_000,
  stallAfterMs: 120_000,
  stopConfirmTimeoutMs: 60_000,
} as const satisfies Required<Pick<HpcActivityDeps, 'heartbeatIntervalMs' | 'stallAfterMs' | 'stopConfirmTimeoutMs'>>;

export interface HpcActivityDeps {
  jobLog: JobLog;
  /** Complexity limits checked before heavy work (default DEFAULT_ASSET_LIMITS). */
  assetLimits?: AssetLimits;
  storage: AssetStorage;
  /** This process's scratch folder, where each stage attempt works on files fetched from storage. */
  scratch: WorkerScratch;
  progressMaxRate: number;
  onDrop?: (err: unknown) => void;
  /** Called when Redis acknowledged a progress publish: `producedAt` is the report's ts (for the publish-lag metric). */
  onPublished?: (seq: number, producedAt: number) => void;
  /**
   * How often a running stage heartbeats even when its thread has nothing new to say.
   * @default 2000 (HPC_ACTIVITY_DEFAULTS.heartbeatIntervalMs)
   */
  heartbeatIntervalMs?: number;
  /** Spreads this worker's heartbeats over its running stages (none: each stage heartbeats up to once a second). */
  heartbeatPacer?: HeartbeatPacer;
  /**
   * A running stage whose thread reports no progress for this long is flagged stalled.
   * @default 120000 (HPC_ACTIVITY_DEFAULTS.stallAfterMs, 2 min)
   */
  stallAfterMs?: number;
  /** Called with +1 when a stage stalls and -1 when it moves again or ends (for a gauge). */
  onStallChange?: (delta: 1 | -1) => void;
  /**
   * Stop messages from Redis: a cancelled job's stage stops its CPU work when the workflow accepts the
   * cancel, not when the answer to its next heartbeat brings it (none: the heartbeat path only).
   */
  stopHints?: StopHints;
  /**
   * After a stop message, how long to wait for Temporal to confirm the cancel.
   * @default 60000 (HPC_ACTIVITY_DEFAULTS.stopConfirmTimeoutMs)
   */
  stopConfirmTimeoutMs?: number;
  /** Called when a stage stopped on a stop message, before Temporal confirmed the cancel. */
  onStopHint?: (jobId: string, stage: string) => void;
  /** The stage registry whose activities this worker runs (default the built-in stages, common/stages.ts). */
  stages?: readonly StageDescriptor[];
  /**
   * This machine's Blender, for the import and preview stages; null: none (imports fail BLENDER_UNAVAILABLE,
   * previews say there is no turntable).
   * @default findBlender() (BLENDER_PATH, else the provisioned bpy module)
   */
  blender?: BlenderRuntime | null;
  /**
   * How the preview stage renders.
   * @default DEFAULT_TURNTABLE (16 frames, 256², 8 samples, at most 20 s a frame)
   */
  turntable?: TurntableConfig;
}

/** A stop message (StopHints) ended the stage's work; Temporal's cancel has not arrived yet. */
export class StopRequestedError extends Error {
  override readonly name = 'StopRequestedError';
}

/**
 * Waits for Temporal's cancel after the stage stopped on a stop message, heartbeating (with the stage's
 * last details, so a checkpoint is never overwritten) so the cancel comes back within the worker's
 * heartbeat throttle. False when it did not come within timeoutMs.
 */
async function confirmCancel(ctx: Context, lastDetails: () => unknown, timeoutMs: number): Promise<boolean> {
  const signal = ctx.cancellationSignal;
  if (signal.aborted) return true;
  const beat = () => ctx.heartbeat(lastDetails());
  beat();
  const ticker = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve(true);
        },
        { once: true },
      );
    });
  } finally {
    clearInterval(ticker);
  }
}

const PreviousHeartbeat = z.object({ checkpoint: z.unknown().optional() });
const JobRequest = z.object({ jobId: z.string().min(1) });

/** The job an activity works for: its workflow's id. */
function jobIdOf(ctx: Context): string {
  const id = ctx.info.workflowExecution?.workflowId;
  if (!id)
    throw ApplicationFailure.nonRetryable('Asset activities run only inside a processAsset workflow', FAILURES.MISCONFIGURED_ACTIVITY.code);
  return id;
}

/** Finds the file the asset is opened from: the one model file (common/model-files.ts) among the uploaded files. */
export function mainFileOf(files: ProcessAssetInput['files']): string {
  const mains = files.filter((f) => MODEL_FILE.test(f.name));
  if (mains.length !== 1) {
    throw ApplicationFailure.nonRetryable(
      mains.length === 0
        ? `The upload has no model file (${MODEL_FORMATS_IN_WORDS}). Upload the model file together with its textures.`
        : `The upload has ${mains.length} model files (${mains.map((f) => f.name).join(', ')}); upload one asset per job.`,
      FAILURES.INVALID_ASSET.code,
    );
  }
  return mains[0]!.name;
}

/**
 * The longest file name (in UTF-8 bytes) a job accepts: file systems allow 255 bytes, and atomic writes add
 * a 41-byte ".<uuid>.tmp" suffix to a name while writing it.
 */
export const MAX_FILE_NAME_BYTES = 255 - 41;

/**
 * Refuses, before anything is laid out on disk, the upload names that fail the same way on every attempt:
 * two files of one name (EEXIST when linked side by side) and names too long for the file system
 * (ENAMETOOLONG: 100 Cyrillic letters are 200 bytes).
 */
export function assertUploadNames(files: ProcessAssetInput['files']): void {
  const seen = new Set<string>();
  for (const { name } of files) {
    const folded = name.normalize('NFC');
    if (seen.has(folded)) {
      throw ApplicationFailure.nonRetryable(
        `Two uploaded files are both called "${name}". Rename one (and the reference to it in the model) and upload again.`,
        FAILURES.INVALID_ASSET.code,
        { code: 'DUPLICATE_FILE_NAME', message: `"${name}" is uploaded twice`, severity: 'error' },
      );
    }
    seen.add(folded);
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > MAX_FILE_NAME_BYTES) {
      throw ApplicationFailure.nonRetryable(
        `The file name "${name.slice(0, 40)}…" is ${bytes} bytes long in UTF-8; the limit is ${MAX_FILE_NAME_BYTES}. Rename it shorter and upload again.`,
        FAILURES.INVALID_ASSET.code,
        { code: 'FILE_NAME_TOO_LONG', message: `"${name.slice(0, 40)}…" is ${bytes} bytes`, severity: 'error' },
      );
    }
  }
}

/**
 * Compute activities: run only by the HPC worker, on the `hpc` task queue. Each stage runs its CPU work
 * in a worker thread, reports progress through a ProgressReporter (heartbeat + Redis mirror), resumes
 * from its heartbeat checkpoint when retried, and on cancellation stops the thread and removes what it
 * half-wrote.
 */
export function createHpcActivities(deps: HpcActivityDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? HPC_ACTIVITY_DEFAULTS.heartbeatIntervalMs;
  const blender = deps.blender === undefined ? findBlender() : deps.blender;
  const turntable = deps.turntable ?? DEFAULT_TURNTABLE;
  const pacer = deps.heartbeatPacer;

  const modules = new Map<string, Promise<StageModule>>();
  const moduleOf = (stage: string) => {
    let loaded = modules.get(stage);
    if (!loaded) {
      loaded = loadStageModule(stage);
      // A module that failed to load is tried again by the next attempt.
      loaded.catch(() => modules.delete(stage));
      modules.set(stage, loaded);
    }
    return loaded;
  };

  /** Runs one stage of the registry for a job: its descriptor says what it reads and writes, its module does the work. */
  async function runStage(descriptor: StageDescriptor, rawRequest: StageRequest): Promise<unknown> {
    const stage = descriptor.name;
    const ctx = Context.current();
    const jobId = jobIdOf(ctx);
    const request = StageRequestSchema.safeParse(rawRequest);
    if (!request.success) {
      // The workflow sent something the contract does not allow: no retry will change it.
      throw ApplicationFailure.nonRetryable(`${stage}: malformed stage request: ${request.error.message}`, FAILURES.INVALID_REQUEST.code);
    }
    const { input, settings } = request.data;
    assertUploadNames(input.files);
    const mainFile = mainFileOf(input.files);
    const previous = PreviousHeartbeat.safeParse(ctx.info.heartbeatDetails);
    const checkpoint = previous.success ? previous.data.checkpoint : undefined;

    let lastDetails: unknown = ctx.info.heartbeatDetails;
    const reporter = new ProgressReporter<unknown>({
      jobId,
      owner: input.owner,
      stages: stageNamesOf(input.plan),
      attempt: ctx.info.attempt,
      jobLog: deps.jobLog,
      // Until this attempt records a checkpoint of its own, keep sending the previous attempt's, so an
      // attempt that dies early does not lose the work done before it.
      heartbeat: (details) => {
        lastDetails = details.checkpoint === undefined && checkpoint !== undefined ? { ...details, checkpoint } : details;
        ctx.heartbeat(lastDetails);
      },
      maxRate: deps.progressMaxRate,
      ...(pacer ? { heartbeatIntervalMs: () => pacer.intervalMs() } : {}),
      onDrop: deps.onDrop,
      onPublished: deps.onPublished,
    });
    reporter.startStage(stage, 1, 'steps', checkpoint === undefined ? `Starting ${stage}` : `Resuming ${stage}`);

    // A process stage runs its program from here; a thread stage's module runs in a stage thread.
    const { discard, afterRun } = descriptor.process ? processStageModule(descriptor, descriptor.process) : await moduleOf(stage);
    // Everything the stage reads comes from storage into this attempt's own scratch folder: the attempt
    // may run on another machine than the stage before it, or than the attempt it resumes.
    const scratch = await deps.scratch
      .openStage(jobId, stage, descriptor.reads.includes('upload') ? input.files : null)
      .catch(throwAsActivityFailure);
    const workDir = scratch.workDir;
    // A stage that adds outputs (or reads them) after they were published starts from them: publishing replaces them all.
    const withOutputs = descriptor.writes.includes('outputs') || descriptor.reads.includes('outputs');
    if (withOutputs) await scratch.loadPublishedOutputs().catch(throwAsActivityFailure);
    const job: StageJob = {
      stage,
      jobId,
      assetName: input.assetName,
      mainFile,
      fileNames: input.files.map((f) => f.name),
      inputDir: scratch.inputDir,
      workDir,
      outputDir: withOutputs ? scratch.outputDir : '',
      settings,
      limits: deps.assetLimits ?? DEFAULT_ASSET_LIMITS,
      blender,
      turntable,
      checkpoint,
      // After an import, every stage reads the GLB Blender wrote as the upload.
      ...(stage !== 'import' && needsImport(mainFile) ? importedUpload(mainFile, workDir) : {}),
    };

    // The stage's work stops on Temporal's cancel (or timeout, or shutdown) and on a stop message.
    const work = new AbortController();
    const onCancel = () => work.abort(ctx.cancellationSignal.reason);
    if (ctx.cancellationSignal.aborted) onCancel();
    else ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
    const stopWatching = deps.stopHints?.watch(jobId, () => {
      if (work.signal.aborted) return;
      // ctx.log, not log: this runs from the Redis connection's callback, outside the activity's context.
      ctx.log.info('Stopping the stage: its job is being cancelled', { jobId, stage });
      deps.onStopHint?.(jobId, stage);
      work.abort(new StopRequestedError(`${stage} stopped: job ${jobId} is being cancelled`));
    });

    let done = 0;
    // A checkpoint is reported only once the files it names are stored, so a retry on another machine
    // finds everything it claims; updates stay in order behind it.
    let reported: Promise<void> = Promise.resolve();
    const stall = stallWatchFor(ctx, jobId, input.owner, stage);
    // The thread may spend minutes in one library call; the event loop is free, so heartbeat from here.
    const leavePacer = pacer?.join();
    const ticker = setInterval(() => {
      reporter.update(done);
      stall.check();
    }, heartbeatIntervalMs);
    try {
      const events: StageThreadEvents = {
        onStart: (total, unit, message) => {
          stall.progress();
          reporter.startStage(stage, total, unit, message);
        },
        onProgress: (value, message, next) => {
          if (value !== done || next !== undefined) stall.progress();
          reported = reported
            .then(() => (next === undefined ? undefined : scratch.persist()))
            .then(
              () => {
                done = value;
                reporter.update(value, message, next);
              },
              (err: unknown) => log.warn('Could not store a checkpoint; the stage goes on', { jobId, stage, error: String(err) }),
            );
        },
      };
      const output = descriptor.process
        ? await runProcessStage(descriptor, descriptor.process, job, events, work.signal)
        : await runStageThread(job, events, work.signal);
      const parsed: unknown = descriptor.result.parse(output);
      const final = afterRun ? descriptor.result.parse(await afterRun(job, parsed, reporter, work.signal)) : parsed;
      await reported;
      await scratch.persist();
      if (descriptor.writes.includes('outputs')) await scratch.publish();
      reporter.finishStage();
      await reporter.flush();
      return final;
    } catch (err) {
      reporter.close();
      if (work.signal.aborted && !ctx.cancellationSignal.aborted) {
        // Stopped on a stop message: Temporal's cancel follows (the workflow sent it with the message).
        const timeoutMs = deps.stopConfirmTimeoutMs ?? HPC_ACTIVITY_DEFAULTS.stopConfirmTimeoutMs;
        if (!(await confirmCancel(ctx, () => lastDetails, timeoutMs))) {
          // Never lose a stage to a stray message: run it again from its last checkpoint.
          throw ApplicationFailure.retryable(
            `${stage} stopped on a cancel request that Temporal did not confirm within ${timeoutMs / 1000} s; the stage will run again`,
            FAILURES.STOP_NOT_CONFIRMED.code,
          );
        }
      }
      if (ctx.cancellationSignal.aborted) {
        // Asked to stop: drop the stage's partial work. Timed out or shutting down: keep finished,
        // checkpointed pieces for the retry and drop only half-written files.
        await (
          ctx.cancellationDetails?.cancelRequested
            ? // After any checkpoint still being stored: what the discard removes goes from storage too.
              reported.then(() => discard?.(job)).then(() => scratch.forgetDiscarded())
            : Promise.all([removeTempFiles(workDir), job.outputDir ? removeTempFiles(job.outputDir) : undefined])
        ).catch((cleanupErr: unknown) => {
          // The cancellation must still be reported; the scratch folder goes below, cleanupJob removes the checkpoints.
          log.warn('Could not remove a cancelled stage’s partial files', { jobId, stage, error: String(cleanupErr) });
        });
        // Temporal's own reason (a CancelledFailure), also when a stop message ended the work first.
        throw work.signal.reason instanceof StopRequestedError ? ctx.cancellationSignal.reason : err;
      }
      throw toActivityFailure(err);
    } finally {
      leavePacer?.();
      stopWatching?.();
      await scratch
        .dispose()
        .catch((err: unknown) => log.warn('Could not empty a stage’s scratch folder', { jobId, stage, error: String(err) }));
      ctx.cancellationSignal.removeEventListener('abort', onCancel);
      clearInterval(ticker);
      if (stall.stalled) deps.onStallChange?.(-1);
    }
  }

  /**
   * A stall (no progress from the thread for stallAfterMs while the activity still heartbeats) is told to
   * the artist as a `stalled` event, to the workflow as a signal (it sets the AssetStalled search
   * attribute) and to metrics; `unstalled` when the stage moves again.
   */
  function stallWatchFor(ctx: Context, jobId: string, owner: string, stage: string): StallWatch {
    const announce = (stalled: boolean, message: string) => {
      deps.onStallChange?.(stalled ? 1 : -1);
      deps.jobLog
        .publishEvent({ jobId, owner, event: stalled ? 'stalled' : 'unstalled', stage, message, ts: Date.now() })
        .catch((err: unknown) => deps.onDrop?.(err));
      // The workflow may be gone or the client absent (tests): the event and metric still went out.
      ctx.client?.workflow
        .getHandle(jobId)
        .signal(stallChangedSignal, stalled)
        .catch((err: unknown) => log.warn('Could not tell the workflow about a stall', { jobId, stage, error: String(err) }));
    };
    return new StallWatch({
      stallAfterMs: deps.stallAfterMs ?? HPC_ACTIVITY_DEFAULTS.stallAfterMs,
      onStall: (silentMs) => {
        log.warn('Stage stalled', { jobId, stage, silentMs });
        announce(true, `No progress in ${stage} for ${Math.round(silentMs / 1000)} s; an engineer has been alerted.`);
      },
      onRecover: (stalledMs) => {
        log.info('Stage moving again', { jobId, stage, stalledMs });
        announce(false, `${stage} is moving again.`);
      },
    });
  }

  // One activity per stage of the registry, by its descriptor's activity type.
  const stageActivities = Object.fromEntries(
    (deps.stages ?? BUILTIN_STAGES).map((descriptor) => [descriptor.activity, (request: StageRequest) => runStage(descriptor, request)]),
  );
  const activities = {
    // Built from the registry, whose built-in descriptors define these types (BuiltinStageActivities); each
    // result is checked against its descriptor's schema before it is returned.
    ...(stageActivities as unknown as Omit<PipelineActivities, 'cleanupJob' | 'deleteOutputs'>),
    async cleanupJob(request: { jobId: string; keepOutputs: boolean }): Promise<void> {
      const { jobId, keepOutputs } = JobRequest.extend({ keepOutputs: z.boolean() }).parse(request);
      await deps.storage.removeCheckpoints(jobId).catch(throwAsActivityFailure);
      if (!keepOutputs) await deps.storage.removeOutputs(jobId).catch(throwAsActivityFailure);
    },
    /** When the retention runs out: the outputs, and the job's hold on its upload (deleted when no other job holds it). */
    async deleteOutputs(request: { jobId: string }): Promise<void> {
      await deps.storage.deleteJob(JobRequest.parse(request).jobId).catch(throwAsActivityFailure);
    },
  } satisfies PipelineActivities;
  // Studio stages' activities (STAGES_CONFIG) are known by name only: they are in stageActivities too.
  return activities as typeof activities & Readonly<Record<string, (request: StageRequest) => Promise<unknown>>>;
}

/**
 * Maps a stage's failure to what Temporal should do with it, by the catalogue's retryable flag: never
 * retry bad input, retry the rest. A full, read-only or forbidden disk becomes STORAGE (retried, then
 * told to the artist as the farm's fault).
 */
function toActivityFailure(err: unknown): unknown {
  if (err instanceof StageFailedError && err.failureType) {
    const { code, retryable } = failureOf(err.failureType);
    return ApplicationFailure.create({ message: err.message, type: code, nonRetryable: !retryable, details: err.details });
  }
  if (isStorageError(err)) {
    return ApplicationFailure.create({
      message: (err as Error).message,
      type: FAILURES.STORAGE.code,
      nonRetryable: false,
      cause: err as Error,
    });
  }
  return err;
}

function throwAsActivityFailure(err: unknown): never {
  throw toActivityFailure(err);
}

export type HpcActivities = ReturnType<typeof createHpcActivities>;
