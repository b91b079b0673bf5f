import { log } from '@temporalio/activity';
import { z } from 'zod';
import { HpcWaitSchema, type HpcQueueBook, type HpcWait } from '../common/hpc-queue.js';
import type { JobLog } from '../common/job-log.js';
import { JobEventFields, TERMINAL_EVENTS } from '../common/progress.js';

/** The `started` event a reset run announces itself with; it must name the run (publishIfSuperseded compares it). */
const RestartAnnouncement = JobEventFields.extend({ event: z.literal('started'), runId: z.string().min(1).max(64) });
type RestartAnnouncement = z.infer<typeof RestartAnnouncement>;

/**
 * Light activities run by the orchestrator worker. Workflows cannot do I/O, so they publish their
 * state changes (started, retrying, cancelled, completed...) through these.
 */
export function createJobEventActivities(deps: {
  jobLog: JobLog;
  onDrop?: (err: unknown) => void;
  /** Called once per terminal event this activity publishes (or tries to), for the jobs-finished metric. */
  onFinished?: (outcome: string, preset: string) => void;
  /** The HPC queues' waiting lines (common/hpc-queue.ts); without it no job is told its place. */
  hpcQueue?: HpcQueueBook;
}) {
  /**
   * A stage announced as started waits for an HPC slot from now (the workflow schedules its activity
   * right after this publish); a job being cancelled or ended waits no more. Best effort like the
   * events: a lost update costs a place shown, never the job.
   */
  async function followQueue(events: JobEventFields[], wait: HpcWait): Promise<void> {
    const book = deps.hpcQueue;
    const last = events.at(-1);
    if (!book || !last) return;
    try {
      if (last.event === 'stage-started') await book.join(last.jobId, last.owner, wait);
      else if (last.event === 'cancelling' || TERMINAL_EVENTS.has(last.event)) await book.leave(last.jobId, wait.queue);
    } catch (err) {
      deps.onDrop?.(err);
      log.warn('Job place in the HPC queue not updated', { jobId: last.jobId, event: last.event, error: String(err) });
    }
  }

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

  /**
   * A run started by a reset from the Temporal UI publishes its first events at once, before the API's
   * reconciler notices the reset; this says so first, as the API would: published only while the
   * stream still ends with another run's terminal event, so the API and every later call of the run
   * find it done and publish nothing.
   */
  async function announceRestart(announcement: RestartAnnouncement): Promise<void> {
    try {
      await deps.jobLog.publishIfSuperseded(announcement);
    } catch (err) {
      deps.onDrop?.(err);
      log.warn('Restart of the job not mirrored to Redis', { jobId: announcement.jobId, error: String(err) });
    }
  }

  return {
    publishJobEvent,
    /**
     * Publishes several events of one job in the given order, each as publishJobEvent does (a Redis
     * outage drops them with a warning, never fails). Workflows call it as a local activity with the
     * events that arise in one workflow task (a stage's end and the next one's start), so each costs
     * one local activity, not one each. `restarted` is given by a run that a reset started: see announceRestart.
     * `wait` says where the job's stages wait for an HPC slot: a `stage-started` last puts the job in
     * that line once its events are out, a `cancelling` or terminal event takes it out (followQueue).
     */
    async publishJobEvents(events: JobEventFields[], restarted?: JobEventFields, wait?: HpcWait): Promise<(number | null)[]> {
      // All checked first, so a malformed event fails the call before any of them is published.
      const valid = events.map((fields) => JobEventFields.parse(fields));
      const place = wait ? HpcWaitSchema.parse(wait) : undefined;
      const announcement = restarted ? RestartAnnouncement.parse(restarted) : undefined;
      if (announcement) await announceRestart(announcement);
      // Sent at once, in order: the job's JobLog keeps its publishes in call order and sends those that
      // wait together, so a stage's end and the next one's start cost one round trip, not two.
      const answers = await Promise.all(valid.map((fields) => publishJobEvent(fields)));
      // Keep the stream in order: from the first that did not go out, all wait (the workflow re-sends them;
      // one that went out after it is then published again, a repeat rather than a gap).
      const missing = answers.indexOf(null);
      const seqs = missing === -1 ? answers : answers.slice(0, missing + 1);
      if (place) await followQueue(valid, place);
      return seqs;
    },
  };
}

export type JobEventActivities = ReturnType<typeof createJobEventActivities>;
