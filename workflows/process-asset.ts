import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { HpcActivities, JobEventActivities } from '../activities/index.js';
import type { AssetReport, ProcessAssetInput } from '../common/jobs.js';
import type { JobEventKind } from '../common/progress.js';
import { resolveSettings } from '../common/pipeline.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';

/** Compute steps: on the HPC machine, heartbeating, retried with backoff unless the input is bad. */
const computeActivities = proxyActivities<HpcActivities>({
  taskQueue: HPC_TASK_QUEUE,
  startToCloseTimeout: '2 hours',
  // A dead HPC worker is noticed within this, and the step retried from its last checkpoint.
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['InvalidAsset'],
  },
});

/** Event publishing: quick, on the orchestrator's own queue. */
const lightActivities = proxyActivities<JobEventActivities>({
  taskQueue: ORCHESTRATOR_TASK_QUEUE,
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/** One artist's upload processed into game-ready outputs. The workflow id is the job id. */
export async function processAsset(input: ProcessAssetInput): Promise<AssetReport> {
  const jobId = workflowInfo().workflowId;
  const publish = (event: JobEventKind, message: string, extra: Record<string, unknown> = {}) =>
    lightActivities.publishJobEvent({ jobId, owner: input.owner, event, message, ts: Date.now(), ...extra });

  await publish('started', `Processing ${input.assetName}`);
  try {
    const stats = await computeActivities.inspectAsset({ input, settings: resolveSettings(input.options) });
    await publish('stage-finished', `Inspected ${input.assetName}`, { stage: 'inspect' });
    const report: AssetReport = { jobId, assetName: input.assetName, input: stats };
    await publish('completed', `${input.assetName} is ready`, {
      result: { meshes: stats.meshes, vertices: stats.vertices, triangles: stats.triangles, textures: stats.textures.length },
    });
    return report;
  } catch (err) {
    if (isCancellation(err)) {
      // The job scope is cancelled; the announcement must still go out.
      await CancellationScope.nonCancellable(() => publish('cancelled', `${input.assetName} was cancelled`));
      throw err;
    }
    const cause =
      err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
        ? err.cause
        : err instanceof ApplicationFailure
          ? err
          : null;
    await publish('failed', cause?.message ?? 'The job failed', {
      error: { type: cause?.type ?? 'InternalError', message: cause?.message ?? String(err), details: cause?.details ?? undefined },
    });
    throw err;
  }
}
