import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { StageRequest } from '../../common/pipeline.js';
import type { HpcActivities } from '../../activities/hpc-activities.js';

/** Test-only workflow: one buildLods call with the options a real pipeline gives its compute steps. */
const { buildLods } = proxyActivities<HpcActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  // The workflow sees the cancellation only once the activity has stopped its thread and cleaned up.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { maximumAttempts: 1 },
});

export async function buildLodsProbe(request: StageRequest): Promise<unknown> {
  return buildLods(request);
}
