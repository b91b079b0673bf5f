import { log } from '@temporalio/activity';
import type { JobLog } from '../common/job-log.js';
import { JobEventFields, TERMINAL_EVENTS } from '../common/progress.js';

/**
 * Light activities run by the orchestrator worker. Workflows cannot do I/O, so they publish their
 * state changes (started, retrying, cancelled, completed...) through these.
 */
export function createJobEventActivities(deps: {
  jobLog: JobLog;
  onDrop?: (err: unknown) => void;
  /** Called once per terminal event this activity publishes (or tries to), for the jobs-finished metric. */
  onFinished?: (outcome: string, preset: string) => void;
}) {
  /**
   * Publishes one workflow-level event to the job's channel; resolves to its sequence number, or null
   * when Redis is unreachable. A Redis outage must not hold up the job, and the API reconciles
   * terminal states from the workflow's own status, so a lost event is logged, not retried.
   */
  async function publishJobEvent(fields: JobEventFields): Promise<number | null> {
    const event = JobEventFields.parse(fields);
    // Counted before publishing: the job finished whether or not Redis heard about it. A retried
    // attempt after a lost answer may count it twice; terminations never run this (the API reconciles them).
    if (TERMINAL_EVENTS.has(event.event)) deps.onFinished?.(event.event, event.preset ?? 'unknown');
    try {
      return await deps.jobLog.publishEvent(event);
    } catch (err) {
      deps.onDrop?.(err);
      log.warn('Job event not mirrored to Redis', { jobId: event.jobId, event: event.event, error: String(err) });
      return null;
    }
  }

  return {
    publishJobEvent,
    /**
     * Publishes several events of one job in the given order, each as publishJobEvent does (a Redis
     * outage drops them with a warning, never fails). Workflows call it as a local activity with the
     * events that arise in one workflow task (a stage's end and the next one's start), so each costs
     * one local activity, not one each.
     */
    async publishJobEvents(events: JobEventFields[]): Promise<(number | null)[]> {
      // All checked first, so a malformed event fails the call before any of them is published.
      const valid = events.map((fields) => JobEventFields.parse(fields));
      const seqs: (number | null)[] = [];
      for (const fields of valid) seqs.push(await publishJobEvent(fields));
      return seqs;
    },
  };
}

export type JobEventActivities = ReturnType<typeof createJobEventActivities>;
