import { CancellationScope, patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { JobEventActivities } from '../activities/index.js';
import type { HpcWait } from '../common/hpc-queue.js';
import { PRIORITY_KEYS } from '../common/job-priority.js';
import type { JobEventFields, JobEventKind } from '../common/progress.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';

/**
 * Patch id of publishing events as local activities. Runs started before it publish each event as an
 * activity task (`remoteEvents`) and must keep doing so on replay.
 */
export const LOCAL_JOB_EVENTS_PATCH = 'job-events-as-local-activities';

/**
 * Same limits on both paths: a publish is one Redis script per event that fails within a second while
 * Redis is down (the publisher connection has no offline queue), and the activity then resolves to
 * null, so publishing never fails the job on an outage; the retries are for a worker that died mid-publish.
 */
const PUBLISH_LIMITS = { startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 3 } } as const;

/** Before LOCAL_JOB_EVENTS_PATCH: an activity on the orchestrator's own queue, a server round trip per event. */
const remoteEvents = proxyActivities<JobEventActivities>({ taskQueue: ORCHESTRATOR_TASK_QUEUE, ...PUBLISH_LIMITS });

/**
 * Since LOCAL_JOB_EVENTS_PATCH: run by the orchestrator worker inside the workflow task, so a stage's
 * `stage-finished`, the next `stage-started` and the next stage's activity leave in one workflow task
 * instead of five round trips through the server. A local activity is recorded as a marker once it
 * completes; one cut short by a worker crash runs again, as a retried activity did (at least once
 * either way).
 */
const localEvents = proxyLocalActivities<JobEventActivities>({
  ...PUBLISH_LIMITS,
  // Give up within the limits above rather than hold a job's workflow task for long.
  scheduleToCloseTimeout: '40 seconds',
});

/** What an event carries besides its kind and message. */
export type JobEventExtra = Pick<JobEventFields, 'stage' | 'error' | 'result' | 'preset' | 'stages'>;

/** Publishes one event (with any held by `publishWithNext` before it) and resolves once all are out. */
export type PublishJobEvent = (event: JobEventKind, message: string, extra?: JobEventExtra) => Promise<unknown>;

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
 * `local` is the run's publishesEventsLocally(); `name` names the job in messages.
 *
 * `publishWithNext` is for an event that is always followed by another in the same workflow task (a
 * stage's end by the next stage's start or the job's outcome): on the local path it is held and sent,
 * in order, in one local activity with that next event; on the old path it is published at once, as
 * those runs recorded it. Every path of a workflow ends in a `publish`, so nothing held is left behind.
 */
export function jobEventPublisher(
  jobId: string,
  owner: string,
  { local, name, hpcQueue }: { local: boolean; name: string; hpcQueue?: string },
): { publish: PublishJobEvent; publishWithNext: PublishJobEvent } {
  const fields = (event: JobEventKind, message: string, extra: JobEventExtra = {}): JobEventFields => ({
    jobId,
    owner,
    event,
    message,
    ts: Date.now(),
    runId: workflowInfo().runId,
    ...extra,
  });
  if (!local) {
    const publish: PublishJobEvent = (...args) => remoteEvents.publishJobEvent(fields(...args));
    return { publish, publishWithNext: publish };
  }
  // A run started by a reset (its run id differs from the one recorded at the start) redoes the reset
  // workflow task at once, publishing the redone stage's start: each publish first announces the restart,
  // as the API's reconciler would (only while the stream ends with the old run's outcome, so once).
  const info = workflowInfo();
  const restarted = info.runId !== info.originalExecutionRunId;
  // Where the job's stages wait for a slot, with the priority they inherit from the workflow, so the
  // activity can keep the job's place in that line (common/hpc-queue.ts). An activity input, not a
  // command: replay is unaffected.
  const wait: HpcWait | undefined = hpcQueue
    ? {
        queue: hpcQueue,
        priorityKey: info.priority?.priorityKey || PRIORITY_KEYS.normal,
        fairnessKey: info.priority?.fairnessKey ?? '',
        fairnessWeight: info.priority?.fairnessWeight || 1,
      }
    : undefined;
  let held: JobEventFields[] = [];
  return {
    publish: (...args) => {
      const events = [...held, fields(...args)];
      held = [];
      // Not cancellable: a cancel that arrives as a stage ends must not drop that stage's held
      // `stage-finished` with the call it rides in; publishing takes milliseconds, and the cancel
      // then stops the job at its next step.
      return CancellationScope.nonCancellable(async () => {
        const announcement = restarted ? fields('started', `${name} was restarted by an engineer and is running again`) : undefined;
        const seqs = await localEvents.publishJobEvents(events, announcement, wait);
        // Events Redis did not take (an outage, a failover) go out first with the next publish, in order,
        // so a stream that resumes shows every stage; the answer is recorded, so replay holds the same ones.
        const missing = seqs.findIndex((seq) => seq === null);
        const sent = missing === -1 ? seqs.length : missing;
        if (sent < events.length) held = [...events.slice(sent), ...held];
        return seqs;
      });
    },
    publishWithNext: async (...args) => {
      held.push(fields(...args));
    },
  };
}
