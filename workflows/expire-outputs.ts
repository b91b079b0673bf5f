import { patched, proxyActivities, sleep } from '@temporalio/workflow';
import type { PipelineActivities } from '../common/pipeline.js';
import { HPC_TASK_QUEUE } from '../common/task-queues.js';

/**
 * Deleting outputs is idempotent and must eventually happen (outputs must not outlive their retention),
 * so it retries without a limit, backing off to once an hour while the HPC machine is away.
 */
function retentionActivities(taskQueue: string) {
  return proxyActivities<Pick<PipelineActivities, 'deleteOutputs' | 'cleanupJob'>>({
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
   * The HPC queue the job ran on (its options.hpcQueue): the deletion runs there. Unset for
   * the shared `hpc` queue, and in timers started before pinned jobs kept their own queue.
   */
  taskQueue?: string;
}

/**
 * Deletes a job's data when its retention runs out: its outputs, checkpoints and its hold on its uploads
 * (an upload no other job holds is deleted with it). Started by processAsset as an abandoned child, when
 * the job completes and (since the expire-ended-jobs patch) when it fails or is cancelled, so the artist's
 * job closes while this durable timer waits for days.
 */
export async function expireOutputs({ jobId, expiresAt, taskQueue }: ExpireOutputsInput): Promise<void> {
  const activities = retentionActivities(taskQueue ?? HPC_TASK_QUEUE);
  // A completed job's checkpoints stay for its retention: an engineer who resets it to a stage in the
  // Temporal UI (RUNBOOK.md) reruns from that stage's inputs, which are those checkpoints. Timers that
  // started under remove-checkpoints-at-once (which removed them at once) replay as they ran.
  if (!patched('keep-checkpoints-for-reset') && patched('remove-checkpoints-at-once'))
    await activities.cleanupJob({ jobId, keepOutputs: true });
  const wait = Date.parse(expiresAt) - Date.now();
  if (wait > 0) await sleep(wait);
  await activities.deleteOutputs({ jobId });
}
