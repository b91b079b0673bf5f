import { proxyActivities, sleep } from '@temporalio/workflow';
import type { PipelineActivities } from '../common/pipeline.js';
import { HPC_TASK_QUEUE } from '../common/task-queues.js';

/**
 * Deleting outputs is idempotent and must eventually happen (outputs must not outlive their retention),
 * so it retries without a limit, backing off to once an hour while the HPC machine is away.
 */
function retentionActivities(taskQueue: string) {
  return proxyActivities<Pick<PipelineActivities, 'deleteOutputs'>>({
    taskQueue,
    startToCloseTimeout: '10 minutes',
    retry: { initialInterval: '1 minute', backoffCoefficient: 2, maximumInterval: '1 hour' },
  });
}

export interface ExpireOutputsInput {
  jobId: string;
  /** ISO time at which the outputs are deleted (the PipelineReport's expiresAt). */
  expiresAt: string;
  /**
   * The HPC queue the job ran on (its options.hpcQueue): its outputs sit on that host's storage. Unset for
   * the shared `hpc` queue, and in timers started before pinned jobs kept their own queue.
   */
  taskQueue?: string;
}

/**
 * Deletes a completed job's outputs when their retention runs out. Started by processAsset as an
 * abandoned child, so the artist's job closes as COMPLETED while this durable timer waits for days.
 */
export async function expireOutputs({ jobId, expiresAt, taskQueue }: ExpireOutputsInput): Promise<void> {
  const wait = Date.parse(expiresAt) - Date.now();
  if (wait > 0) await sleep(wait);
  await retentionActivities(taskQueue ?? HPC_TASK_QUEUE).deleteOutputs({ jobId });
}
