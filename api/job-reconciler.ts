import type { Logger } from 'pino';
import type { JobLog } from '../common/job-log.js';
import type { JobEventFields } from '../common/progress.js';
import { FAILURES } from '../common/failures.js';

/** Temporal execution statuses after which a run publishes nothing more. */
const CLOSED_STATUSES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT']);

/** True when the workflow run is over (CONTINUED_AS_NEW is not: a new run carries on). */
export function isClosedStatus(status: string): boolean {
  return CLOSED_STATUSES.has(status);
}

/**
 * The terminal event a closed workflow should have published, for when it did not: a terminate or
 * timeout that no workflow code sees, or an event lost while Redis was down. Null while it runs.
 */
export function terminalEventFor(
  job: { jobId: string; owner: string; assetName: string; status: string; runId?: string },
  now: number,
): JobEventFields | null {
  const base = { jobId: job.jobId, owner: job.owner, ts: now, ...(job.runId ? { runId: job.runId } : {}) };
  const name = job.assetName || 'The job';
  switch (job.status) {
    case 'COMPLETED':
      return { ...base, event: 'completed', message: `${name} is ready` };
    case 'CANCELLED':
      return { ...base, event: 'cancelled', message: `${name} was cancelled` };
    case 'TERMINATED':
      return { ...base, event: 'terminated', message: `${name} was stopped by an engineer; retry it if you still need it` };
    case 'TIMED_OUT':
      return {
        ...base,
        event: 'failed',
        message: `${name} took longer than allowed and was stopped; retry it, and tell an engineer if it happens again`,
        error: { type: FAILURES.TIMEOUT.code, message: 'The job ran past its time limit' },
      };
    case 'FAILED':
      return {
        ...base,
        event: 'failed',
        message: `${name} failed; retry it, and tell an engineer if it happens again`,
        error: { type: FAILURES.INTERNAL.code, message: 'The job failed' },
      };
    default:
      return null;
  }
}

/**
 * Makes the progress stream agree with Temporal: when a job's workflow has closed and its stream has
 * no terminal event, publishes one through the JobLog, so it gets a seq, lands in the snapshot and
 * reaches every API process's sockets. Publishing is atomic and conditional, so API processes that
 * notice the same closure at once publish it once.
 */
export class JobReconciler {
  constructor(private readonly deps: { jobLog: JobLog; log: Logger }) {}

  /**
   * Returns true when the job is closed (whether or not an event had to be published). For a running
   * job whose stream ends with the terminal event of an older run (a reset from the Temporal UI or
   * CLI), publishes a `started` event of the current run, so the page leaves the old final state at
   * once instead of when the new run first reports progress. Needs runId (the current run's).
   */
  async reconcile(job: { jobId: string; owner: string; assetName: string; status: string; runId?: string }): Promise<boolean> {
    const event = terminalEventFor(job, Date.now());
    if (!event) {
      if (job.status === 'RUNNING' && job.runId) {
        const seq = await this.deps.jobLog.publishIfSuperseded({
          jobId: job.jobId,
          owner: job.owner,
          event: 'started',
          message: `${job.assetName || 'The job'} was restarted by an engineer and is running again`,
          runId: job.runId,
          ts: Date.now(),
        });
        if (seq !== null)
          this.deps.log.info({ jobId: job.jobId, owner: job.owner, runId: job.runId, seq }, 'job reset in Temporal: announced its new run');
      }
      return false;
    }
    const seq = await this.deps.jobLog.publishTerminalIfMissing(event);
    if (seq !== null)
      this.deps.log.info({ jobId: job.jobId, owner: job.owner, status: job.status, seq }, 'reconciled terminal event from workflow status');
    return true;
  }
}
