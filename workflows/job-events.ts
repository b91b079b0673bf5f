import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { JobEventActivities } from '../activities/index.js';
import type { JobEventFields, JobEventKind } from '../common/progress.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';

/** Event publishing: quick, on the orchestrator's own queue. It never fails on a Redis outage (it logs instead). */
const lightActivities = proxyActivities<JobEventActivities>({
  taskQueue: ORCHESTRATOR_TASK_QUEUE,
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/** What an event carries besides its kind and message. */
export type JobEventExtra = Pick<JobEventFields, 'stage' | 'error' | 'result' | 'preset'>;

/**
 * Publishes workflow events on one job's channel. `ts` is workflow time, so replay sees the same value.
 * Each event carries this run's id: after a Temporal reset the API tells the old run's terminal event
 * from the new run's (activity inputs are not part of the replay check, so this needs no patch).
 */
export function jobEventPublisher(jobId: string, owner: string) {
  return (event: JobEventKind, message: string, extra: JobEventExtra = {}) =>
    lightActivities.publishJobEvent({ jobId, owner, event, message, ts: Date.now(), runId: workflowInfo().runId, ...extra });
}
