import type { Logger } from 'pino';
import type { HpcQueueBook } from '../common/hpc-queue.js';
import type { JobLog } from '../common/job-log.js';
import { TERMINAL_EVENTS, type JobEventFields, type JobEventKind } from '../common/progress.js';
import { FAILURES } from '../common/failures.js';
import type { JobService } from './job-service.js';

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
  constructor(
    private readonly deps: {
      jobLog: JobLog;
      log: Logger;
      /** The HPC queues' waiting lines: a job found closed (terminated, timed out) leaves its line. */
      hpcQueue?: HpcQueueBook;
    },
  ) {}

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
    if (seq !== null) {
      this.deps.log.info({ jobId: job.jobId, owner: job.owner, status: job.status, seq }, 'reconciled terminal event from workflow status');
      // Its workflow did not say it ended (terminated, timed out): nobody else takes it out of the line.
      await this.deps.hpcQueue?.leave(job.jobId);
    }
    return true;
  }
}

/** Workflow descriptions fetched at once when checking watched jobs. */
const WATCH_CONCURRENCY = 8;
/** Finished jobs are checked for a Temporal reset on every this-many rounds (30 s by default). */
const RESET_CHECK_EVERY = 6;
/**
 * A job that stays quiet is checked less and less often: after 1, 2, 4… intervals, at most this far
 * apart. A running stage speaks every couple of seconds, so a quiet job is one waiting in the queue for
 * an HPC slot; a thousand of those cost 200 describes a second at a fixed 5 s (benchmark 1 saw the API
 * describe its 1,000 waiting jobs inside the measured window).
 */
const MAX_QUIET_CHECK_MS = 60_000;

/**
 * Notices workflows that closed with no code to say so (terminate, timeout, reset, or an event lost to
 * a Redis outage) while sockets of this process follow them: every interval, describes each followed job
 * that has not finished and has been quiet for an interval, and reconciles it. Describe is per job but
 * strongly consistent and bounded by the quiet jobs this process's sockets watch; a visibility query
 * would lag and need advanced visibility for IN.
 */
export class QuietJobWatch {
  /** Jobs known to be over (a terminal event was seen): only checked for a reset now and then. */
  private readonly finishedJobs = new Set<string>();
  /** When each job's stream last carried a message here: a job that speaks is running, no need to ask Temporal. */
  private readonly lastHeardAt = new Map<string, number>();
  /** Quiet jobs checked and found still running: how often in a row, and when next. Reset when the job speaks. */
  private readonly quietChecks = new Map<string, { count: number; at: number; next: number }>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private rounds = 0;

  constructor(
    private readonly deps: {
      reconciler: JobReconciler;
      jobs: Pick<JobService, 'describe'>;
      log: Logger;
      /** How often a round runs, and how long a job must have been silent to be checked (0 disables). */
      intervalMs: number;
      /** Every job a socket of this process follows, with the socket's owner (repeats are fine). */
      watched: () => Iterable<readonly [jobId: string, owner: string]>;
    },
  ) {
    if (deps.intervalMs > 0) {
      this.timer = setInterval(() => void this.round(), deps.intervalMs);
      this.timer.unref();
    }
  }

  /** A message of the job's stream arrived: it is alive. */
  heard(jobId: string): void {
    this.lastHeardAt.set(jobId, Date.now());
  }

  /** An event of the job was seen; a terminal one means only resets need checking from now on. */
  noteEvent(jobId: string, kind: JobEventKind): void {
    // A reset in the Temporal UI brings a finished job back: any non-terminal event means it runs again.
    if (TERMINAL_EVENTS.has(kind)) this.finishedJobs.add(jobId);
    else this.finishedJobs.delete(jobId);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Finished jobs too, now and then: a reset from the Temporal UI brings one back with no event of
      // its own until the new run's first stage reports.
      const checkFinished = ++this.rounds % RESET_CHECK_EVERY === 0;
      // A job whose stream spoke within the last interval is running: a terminated or reset workflow's
      // activity stops reporting within a heartbeat, so it turns quiet and is checked on a later round.
      // Without this, 1,000 streaming jobs cost 200 describes a second (BENCHMARKS.md, "Make it fast 2").
      const now = Date.now();
      const quietSince = now - this.deps.intervalMs;
      const due = (jobId: string): boolean => {
        const heardAt = this.lastHeardAt.get(jobId) ?? 0;
        if (heardAt > quietSince) return false;
        const checks = this.quietChecks.get(jobId);
        if (checks && heardAt > checks.at) this.quietChecks.delete(jobId);
        else if (checks && now < checks.next) return false;
        return true;
      };
      const referenced = new Set<string>();
      const selected = new Map<string, string>();
      for (const [jobId, owner] of this.deps.watched()) {
        if (referenced.has(jobId)) continue;
        referenced.add(jobId);
        if (this.finishedJobs.has(jobId) ? checkFinished : due(jobId)) selected.set(jobId, owner);
      }
      for (const jobId of this.finishedJobs) if (!referenced.has(jobId)) this.finishedJobs.delete(jobId);
      for (const jobId of this.lastHeardAt.keys()) if (!referenced.has(jobId)) this.lastHeardAt.delete(jobId);
      for (const jobId of this.quietChecks.keys()) if (!referenced.has(jobId)) this.quietChecks.delete(jobId);
      const queue = [...selected];
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await this.check(...next);
      };
      await Promise.all(Array.from({ length: WATCH_CONCURRENCY }, worker));
    } finally {
      this.running = false;
    }
  }

  private async check(jobId: string, owner: string): Promise<void> {
    try {
      const job = await this.deps.jobs.describe(jobId);
      if (!job || job.owner !== owner) return;
      const closed = await this.deps.reconciler.reconcile({
        jobId,
        owner,
        assetName: job.assetName,
        status: job.status,
        runId: job.description.runId,
      });
      if (closed) {
        this.finishedJobs.add(jobId);
        this.quietChecks.delete(jobId);
      } else if (!this.finishedJobs.has(jobId)) {
        // Still running and still quiet: wait twice as long before asking again.
        const count = (this.quietChecks.get(jobId)?.count ?? 0) + 1;
        const checkedAt = Date.now();
        this.quietChecks.set(jobId, {
          count,
          at: checkedAt,
          next: checkedAt + Math.min(MAX_QUIET_CHECK_MS, this.deps.intervalMs * 2 ** count),
        });
      }
    } catch (err) {
      this.deps.log.warn({ err, jobId, owner }, 'could not check a watched job against Temporal');
    }
  }
}
