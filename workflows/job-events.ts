import { patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { JobEventActivities } from '../activities/index.js';
import type { JobEventFields, JobEventKind } from '../common/progress.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';

/**
 * Patch id of publishing events as local activities. Runs started before it publish through
 * `remoteEvents` (an activity task per event) and must keep doing so on replay.
 */
export const LOCAL_JOB_EVENTS_PATCH = 'job-events-as-local-activities';

/**
 * Same limits for both: a publish is one Redis script that fails within a second while Redis is down
 * (the publisher connection has no offline queue), and publishJobEvent then resolves to null, so it
 * never fails the job on an outage; the retries are for a worker that died mid-publish.
 */
const PUBLISH_LIMITS = { startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 3 } } as const;

/** Before LOCAL_JOB_EVENTS_PATCH: an activity on the orchestrator's own queue, a server round trip per event. */
const remoteEvents = proxyActivities<JobEventActivities>({ taskQueue: ORCHESTRATOR_TASK_QUEUE, ...PUBLISH_LIMITS });

/**
 * Since LOCAL_JOB_EVENTS_PATCH: run by the orchestrator worker inside the workflow task, so a stage's
 * `stage-finished`, the next `stage-started` and the next stage's activity leave in one workflow task
 * instead of five round trips through the server. The workflow still awaits each publish before its
 * next command, so the order the artist sees is unchanged (a stage is announced before its activity is
 * even scheduled). A local activity is recorded as a marker once it completes; one cut short by a
 * worker crash runs again, as a retried activity did (at least once either way).
 */
const localEvents = proxyLocalActivities<JobEventActivities>({
  ...PUBLISH_LIMITS,
  // Give up within the limits above rather than keep a job's workflow task busy for long.
  scheduleToCloseTimeout: '40 seconds',
});

/** What an event carries besides its kind and message. */
export type JobEventExtra = Pick<JobEventFields, 'stage' | 'error' | 'result' | 'preset'>;

/**
 * Whether this run publishes its events as local activities: true for runs started since the patch,
 * false for runs recorded before it. Call it once, first thing in the workflow, and keep the answer
 * for the whole run: `patched` itself answers true once a replayed old run goes live again, and one
 * run switching paths halfway is harder to reason about than one path per run.
 */
export function publishesEventsLocally(): boolean {
  return patched(LOCAL_JOB_EVENTS_PATCH);
}

/**
 * Publishes workflow events on one job's channel. `ts` is workflow time, so replay sees the same value.
 * Each event carries this run's id: after a Temporal reset the API tells the old run's terminal event
 * from the new run's (activity inputs are not part of the replay check, so this needs no patch).
 * `local` is the run's publishesEventsLocally().
 */
export function jobEventPublisher(jobId: string, owner: string, local: boolean) {
  const { publishJobEvent } = local ? localEvents : remoteEvents;
  return (event: JobEventKind, message: string, extra: JobEventExtra = {}) =>
    publishJobEvent({ jobId, owner, event, message, ts: Date.now(), runId: workflowInfo().runId, ...extra });
}
