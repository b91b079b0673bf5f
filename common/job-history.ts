import { z } from 'zod';

/**
 * A job's Temporal workflow history in brief, as GET /api/jobs/:id/history returns it (api/history-router.ts)
 * and `asset-farm logs` shows it (cli/). Workflow-task bookkeeping is left out; what remains says what ran,
 * on which attempt, and why it failed.
 */
export const JobHistoryEntry = z.object({
  /** Temporal's event id, increasing through the history. */
  id: z.number().int().nonnegative(),
  /** ISO time of the event. */
  time: z.string(),
  /** Temporal's event type as its Web UI names it, e.g. ActivityTaskStarted. */
  type: z.string(),
  /** Activity type for activity events, e.g. inspectAsset. */
  activityType: z.string().optional(),
  /** Pipeline stage the activity computes, when it is a compute step. */
  stage: z.string().optional(),
  /** Attempt of the activity (started, completed, failed). */
  attempt: z.number().int().positive().optional(),
  /** Failure message of a failed or timed-out activity or workflow. */
  failure: z.string().optional(),
});
export type JobHistoryEntry = z.infer<typeof JobHistoryEntry>;

export const JobHistory = z.object({
  jobId: z.string(),
  events: z.array(JobHistoryEntry),
});
export type JobHistory = z.infer<typeof JobHistory>;
