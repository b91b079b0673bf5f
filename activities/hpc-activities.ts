import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NodeIO } from '@gltf-transform/core';
import { ALL_EXTENSIONS } from '@gltf-transform/extensions';
import type { JobLog } from '../common/job-log.js';
import type { AssetStats, ProcessAssetInput } from '../common/jobs.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { readAssetStats } from './asset-stats.js';
import { ProgressReporter } from './progress-reporter.js';

/** Stages of a job as the artist sees them, in order. */
export const JOB_STAGES = ['inspect'] as const;

export interface HpcActivityDeps {
  jobLog: JobLog;
  storage: AssetStorage;
  progressMaxRate: number;
  onDrop?: (err: unknown) => void;
}

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
      'InvalidAsset',
    );
  }
  return mains[0]!.name;
}

/**
 * Compute activities: run only by the HPC worker, on the `hpc` task queue. Each reports progress
 * through a ProgressReporter, which heartbeats and mirrors to Redis.
 */
export function createHpcActivities(deps: HpcActivityDeps) {
  function reporterFor(input: ProcessAssetInput) {
    const ctx = Context.current();
    return new ProgressReporter({
      jobId: jobIdOf(ctx),
      owner: input.owner,
      stages: JOB_STAGES,
      attempt: ctx.info.attempt,
      jobLog: deps.jobLog,
      heartbeat: (details) => ctx.heartbeat(details),
      maxRate: deps.progressMaxRate,
      onDrop: deps.onDrop,
    });
  }

  return {
    /** Reads the uploaded asset and counts its meshes, vertices, triangles, materials and textures. */
    async inspectAsset(input: ProcessAssetInput): Promise<AssetStats> {
      const ctx = Context.current();
      const jobId = jobIdOf(ctx);
      const reporter = reporterFor(input);
      const main = mainFileOf(input.files);
      reporter.startStage('inspect', 2, 'steps', `Reading ${input.assetName}`);
      const dir = await deps.storage.materializeInputs(jobId, input.files);
      const io = new NodeIO().registerExtensions(ALL_EXTENSIONS);
      let doc;
      try {
        doc = await io.read(path.join(dir, main));
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`${input.assetName} could not be read as glTF: ${(err as Error).message}`, 'InvalidAsset');
      }
      reporter.update(1, 'Counting geometry and textures');
      const fileBytes = input.files.reduce((sum, f) => sum + f.size, 0);
      const stats = readAssetStats(doc, fileBytes);
      reporter.finishStage(`${stats.meshes} meshes, ${stats.vertices} vertices, ${stats.textures.length} textures`);
      await reporter.flush();
      return stats;
    },
  };
}

export type HpcActivities = ReturnType<typeof createHpcActivities>;
