import { CancellationScope, patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { JobEventActivities } from '../activities/index.js';
import type { HpcWait } from '../common/hpc-queue.js';
import { PRIORITY_KEYS } from '../common/job-priority.js';
import type { JobEventFields, JobEventKind } from '../common/progress.js';
import type { StageHandover } from '../common/stage-handover.js';
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

/** The arguments of one event: its kind, message and extra fields. */
type JobEventArgs = Parameters<PublishJobEvent>;

export interface JobEventPublisher {
  /** This run was started by a reset (its run id is not the one recorded at the start). */
  restarted: boolean;
  publish: PublishJobEvent;
  publishWithNext: PublishJobEvent;
  /** A stage's handover (common/stage-handover.ts): its `stage-finished` and the next stage's `stage-started`. */
  handover(finished: JobEventArgs, next: JobEventArgs): StageHandover;
  /** What the stage answered for its handover (unwrapHandover): the events not published are held for `flush`. */
  handedOver(handover: StageHandover, seqs: (number | null)[] | null): void;
  /** Publishes whatever is held, in one local activity; nothing when nothing is. */
  flush(): Promise<unknown>;
  /** Whether events wait to be published (Redis did not take them, or publishWithNext holds one). */
  holding(): boolean;
}

/** The events from the first one without a sequence number on (all of them when none was answered): those not published. */
function unsent(events: JobEventFields[], seqs: (number | null)[]): JobEventFields[] {
  const missing = seqs.findIndex((seq) => seq === null);
  return events.slice(missing === -1 ? Math.min(seqs.length, events.length) : missing);
}

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
): JobEventPublisher {
  const fields = (event: JobEventKind, message: string, extra: JobEventExtra = {}): JobEventFields => ({
    jobId,
    owner,
    event,
    message,
    ts: Date.now(),
    runId: workflowInfo().runId,
    ...extra,
  });
  // A run started by a reset (its run id differs from the one recorded at the start) redoes the reset
  // workflow task at once, publishing the redone stage's start: each publish first announces the restart,
  // as the API's reconciler would (only while the stream ends with the old run's outcome, so once).
  const info = workflowInfo();
  const restarted = info.runId !== info.originalExecutionRunId;
  if (!local) {
    // Runs from before LOCAL_JOB_EVENTS_PATCH never hand a stage over (processAsset asks only on the local
    // path); whatever they are given to hold goes out, one activity each, with the next flush.
    const publish: PublishJobEvent = (...args) => remoteEvents.publishJobEvent(fields(...args));
    let pending: JobEventFields[] = [];
    return {
      restarted,
      publish,
      publishWithNext: publish,
      handover: (finished, next) => ({ events: [fields(...finished), fields(...next)] }),
      handedOver: ({ events }, seqs) => {
        pending.push(...unsent(events, seqs ?? []));
      },
      flush: async () => {
        const events = pending;
        pending = [];
        for (const e of events) await remoteEvents.publishJobEvent(e);
      },
      holding: () => pending.length > 0,
    };
  }
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
  /** Events Redis did not take (an outage, a failover) go out first with the next publish, in order. */
  const holdMissing = (events: JobEventFields[], seqs: (number | null)[]) => {
    held = [...unsent(events, seqs), ...held];
  };
  const send = (events: JobEventFields[]) =>
    // Not cancellable: a cancel that arrives as a stage ends must not drop that stage's held
    // `stage-finished` with the call it rides in; publishing takes milliseconds, and the cancel
    // then stops the job at its next step.
    CancellationScope.nonCancellable(async () => {
      const announcement = restarted ? fields('started', `${name} was restarted by an engineer and is running again`) : undefined;
      const seqs = await localEvents.publishJobEvents(events, announcement, wait);
      // So a stream that resumes shows every stage; the answer is recorded, so replay holds the same ones.
      holdMissing(events, seqs);
      return seqs;
    });
  return {
    restarted,
    publish: (...args) => {
      const events = [...held, fields(...args)];
      held = [];
      return send(events);
    },
    publishWithNext: async (...args) => {
      held.push(fields(...args));
    },
    handover: (finished, next) => ({ events: [fields(...finished), fields(...next)], ...(wait ? { wait } : {}) }),
    handedOver: ({ events }, seqs) => {
      // A worker that did not hand over (seqs null) published nothing: all of it is the workflow's to send,
      // at the time it learns so.
      const now = Date.now();
      holdMissing(
        events.map((e) => ({ ...e, ts: now })),
        seqs ?? [],
      );
    },
    flush: async () => {
      if (held.length === 0) return [];
      const events = held;
      held = [];
      return send(events);
    },
    holding: () => held.length > 0,
  };
}
