import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { Router } from 'express';
import type { JobHistoryEntry } from '../common/job-history.js';
import { JobId } from '../common/progress.js';
import { ownerOf } from './auth.js';
import type { JobService } from './job-service.js';
import { FAILURES } from '../common/failures.js';
import { BUILTIN_STAGES, type StageDescriptor, stageOfActivity } from '../common/stages.js';

/** One event of a workflow history as the Temporal client returns it. */
type HistoryEvent = NonNullable<History['events']>[number];

/** A failure as Temporal records it: the message, with the cause's message when the outer one is generic. */
interface RecordedFailure {
  message?: string | null;
  cause?: RecordedFailure | null;
}
function failureMessage(failure: RecordedFailure | null | undefined): string | undefined {
  if (!failure) return undefined;
  const cause = failureMessage(failure.cause);
  return cause && cause !== failure.message ? `${failure.message ?? ''}: ${cause}` : (failure.message ?? undefined);
}

/** `activityTaskStartedEventAttributes` → `ActivityTaskStarted`: the name the Temporal Web UI shows. */
function eventTypeOf(event: HistoryEvent): string {
  const key = Object.keys(event).find((k) => k.endsWith('EventAttributes') && event[k as keyof HistoryEvent]);
  if (!key) return 'Unknown';
  const name = key.slice(0, -'EventAttributes'.length);
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** Workflow-task bookkeeping says nothing about the job; only a failed workflow task is worth showing. */
const HIDDEN_TYPES = new Set(['WorkflowTaskScheduled', 'WorkflowTaskStarted', 'WorkflowTaskCompleted']);

/**
 * The history in brief: one entry per event that says what ran, on which attempt, and why it failed.
 * `stageOf` maps an activity type to the stage it runs (from the stage registry, common/stages.ts).
 */
export function briefHistory(
  events: readonly HistoryEvent[],
  stageOf: ReadonlyMap<string, string> = stageOfActivity(BUILTIN_STAGES),
): JobHistoryEntry[] {
  const activityByScheduledId = new Map<number, string>();
  const brief: JobHistoryEntry[] = [];
  for (const event of events) {
    const id = Number(event.eventId ?? 0);
    const type = eventTypeOf(event);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name) activityByScheduledId.set(id, scheduled.activityType.name);
    if (HIDDEN_TYPES.has(type)) continue;

    const activityEvent =
      event.activityTaskStartedEventAttributes ??
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes ??
      event.activityTaskCancelRequestedEventAttributes ??
      event.activityTaskCanceledEventAttributes;
    const activityType = scheduled?.activityType?.name ?? activityByScheduledId.get(Number(activityEvent?.scheduledEventId ?? -1));
    const stage = activityType ? stageOf.get(activityType) : undefined;
    // A completed or failed activity carries no attempt of its own; it is the attempt its start event recorded.
    const attempt = event.activityTaskStartedEventAttributes?.attempt ?? undefined;
    const failure = failureMessage(
      event.activityTaskFailedEventAttributes?.failure ??
        event.activityTaskTimedOutEventAttributes?.failure ??
        event.workflowExecutionFailedEventAttributes?.failure ??
        event.workflowTaskFailedEventAttributes?.failure ??
        event.activityTaskStartedEventAttributes?.lastFailure,
    );
    const seconds = Number(event.eventTime?.seconds ?? 0);
    const nanos = event.eventTime?.nanos ?? 0;
    brief.push({
      id,
      time: new Date(seconds * 1000 + Math.floor(nanos / 1e6)).toISOString(),
      type,
      ...(activityType ? { activityType } : {}),
      ...(stage ? { stage } : {}),
      ...(attempt ? { attempt } : {}),
      ...(failure ? { failure } : {}),
    });
  }
  return brief;
}

/** GET /api/jobs/:id/history: the job's workflow history in brief, for its owner only (`asset-farm logs`). */
export function historyRouter(deps: { jobs: JobService; temporal: Client; stages?: readonly StageDescriptor[] }): Router {
  const router = Router();
  const stageOf = stageOfActivity(deps.stages ?? BUILTIN_STAGES);
  router.get('/:id/history', async (req, res) => {
    const id = JobId.safeParse(req.params.id);
    const job = id.success ? await deps.jobs.describeOwned(ownerOf(res).id, id.data) : null;
    if (!job) {
      // The same answer whether the job does not exist or belongs to someone else.
      res.status(404).json({ error: { code: FAILURES.JOB_NOT_FOUND.code, message: 'No such job.' } });
      return;
    }
    const history = await deps.temporal.workflow.getHandle(job.jobId).fetchHistory();
    res.json({ jobId: job.jobId, events: briefHistory(history.events ?? [], stageOf) });
  });
  return router;
}
