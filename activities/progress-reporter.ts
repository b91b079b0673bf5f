import type { JobLog } from '../common/job-log.js';
import type { ProgressFields } from '../common/progress.js';

/** Heartbeat details every compute activity records: its progress, and a checkpoint to resume from. */
export interface HeartbeatDetails<C> {
  progress: Pick<ProgressFields, 'stage' | 'done' | 'total' | 'unit' | 'message'>;
  checkpoint?: C;
}

export interface ProgressReporterOptions<C> {
  jobId: string;
  owner: string;
  /** Names of all stages of the job, in order; a stage's position gives the whole-job percent. */
  stages: readonly string[];
  attempt: number;
  jobLog: Pick<JobLog, 'publishProgress' | 'publishEvent'>;
  /** Records a heartbeat with Temporal (Context.current().heartbeat in an activity). */
  heartbeat: (details: HeartbeatDetails<C>) => void;
  /**
   * Least time between two heartbeats (default 1 s), except those that always go: stage start and
   * finish, and a changed checkpoint. Matches the HPC worker's maxHeartbeatThrottleInterval. A function
   * is asked at each heartbeat (a HeartbeatPacer spreading the worker's heartbeats over its stages).
   */
  heartbeatIntervalMs?: number | (() => number);
  /**
   * Most updates mirrored to Redis per second, on average (a token bucket that holds up to RATE_BURST
   * sends); the first, stage changes and the last always go.
   */
  maxRate: number;
  now?: () => number;
  /** Called when an update could not be mirrored (Redis down or slow). */
  onDrop?: (err: unknown) => void;
  onPublished?: (seq: number, producedAt: number) => void;
}

/** Mirror calls allowed in flight before further updates are dropped instead of queued. */
const MAX_IN_FLIGHT = 8;
/**
 * Sends the rate limiter lets through back to back. A strict "one per 1/maxRate" rule held every other
 * update of a stream reporting at exactly maxRate for a millisecond or so (timer jitter makes half the
 * gaps a hair short), which was most of the project's median latency in benchmark 1; a bucket of two
 * absorbs that jitter and still caps a flood at maxRate a second on average (BENCHMARKS.md, "Make it fast 2").
 */
const RATE_BURST = 2;
/** Longest flush() waits for mirrors in flight: an activity must never wait on Redis for long. */
const FLUSH_WAIT_MS = 2000;
/**
 * Default least time between heartbeats. Each ctx.heartbeat() converts its details and crosses into the
 * native Temporal core even though the SDK throttles what reaches the server; at 10 updates/s per job
 * that call was the HPC worker's largest CPU cost (BENCHMARKS.md). The worker sends to the server at
 * most once a second anyway (maxHeartbeatThrottleInterval), so calling more often gains nothing.
 */
export const HEARTBEAT_INTERVAL_MS = 1000;

/**
 * The one progress reporter every activity uses. Updates heartbeat to Temporal at most once per
 * `heartbeatIntervalMs` (stage start and finish and every new checkpoint at once, the latest state
 * otherwise with a trailing heartbeat), and are mirrored to Redis, coalesced to at most `maxRate` per
 * second on average (bursts of RATE_BURST) with a trailing send so the latest value always arrives. The
 * first update, every stage start and finish, and flush() are sent at once. Redis trouble never fails or slows the activity: the update is counted as dropped and
 * the next one, a full snapshot, restores the job's state in Redis.
 */
export class ProgressReporter<C = unknown> {
  private stage = '';
  private stageIndex = 0;
  private total = 0;
  private unit = '';
  private done = 0;
  private message = '';
  private stageStartedAt = 0;
  private stageFinished = false;
  /** Sends the rate limiter allows right now (token bucket, refilled at maxRate, capped at RATE_BURST). */
  private tokens = RATE_BURST;
  private refilledAt = Number.NEGATIVE_INFINITY;
  private pending: ProgressFields | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private checkpoint: C | undefined;
  private closed = false;
  private announcedRetry = false;
  /** Updates that could not be mirrored to Redis. */
  dropped = 0;
  /** Updates mirrored to Redis. */
  published = 0;
  /** Heartbeats recorded with Temporal. */
  heartbeats = 0;
  private lastHeartbeatAt = Number.NEGATIVE_INFINITY;
  /** The checkpoint last heartbeated, serialised: a new one must reach Temporal at once so a retry resumes from it. */
  private heartbeatedCheckpoint: string | undefined;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly heartbeatIntervalMs: () => number;

  constructor(private readonly options: ProgressReporterOptions<C>) {
    if (!(options.maxRate > 0)) throw new Error(`maxRate must be a positive number of updates per second (got ${options.maxRate})`);
    this.now = options.now ?? Date.now;
    this.minIntervalMs = 1000 / options.maxRate;
    const interval = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.heartbeatIntervalMs = typeof interval === 'number' ? () => interval : interval;
  }

  /** Starts a stage: always mirrored at once. On a retried attempt, the first stage also announces the retry. */
  startStage(stage: string, total: number, unit: string, message = `Starting ${stage}`): void {
    const index = this.options.stages.indexOf(stage);
    if (index < 0) throw new Error(`Unknown stage "${stage}"; expected one of ${this.options.stages.join(', ')}`);
    this.stage = stage;
    this.stageIndex = index;
    this.total = Math.max(0, total);
    this.unit = unit;
    this.done = 0;
    this.message = message;
    this.stageFinished = false;
    this.stageStartedAt = this.now();
    if (this.options.attempt > 1 && !this.announcedRetry && !this.closed) {
      // Activity retries happen inside Temporal, invisible to the workflow: the new attempt says so itself.
      this.announcedRetry = true;
      this.track(
        this.options.jobLog.publishEvent({
          jobId: this.options.jobId,
          owner: this.options.owner,
          event: 'retrying',
          stage,
          message: `Retrying ${stage} (attempt ${this.options.attempt})`,
          ts: this.stageStartedAt,
        }),
      );
    }
    this.emit(true);
  }

  /** Reports progress within the current stage; mirrored at most maxRate times a second. */
  update(done: number, message?: string, checkpoint?: C): void {
    this.done = Math.max(0, Math.min(done, this.total));
    if (message !== undefined) this.message = message;
    if (checkpoint !== undefined) this.checkpoint = checkpoint;
    this.emit(false);
  }

  /** Says what the stage is doing now without moving its count (e.g. a step after its counted work). */
  note(message: string): void {
    this.message = message;
    this.emit(false);
  }

  /** Ends the current stage at 100 %: always mirrored at once. */
  finishStage(message = `Finished ${this.stage}`): void {
    this.done = this.total;
    this.message = message;
    this.stageFinished = true;
    this.emit(true);
  }

  /** Sends any coalesced update now and waits (briefly) for mirrors in flight; call before the activity returns. */
  async flush(): Promise<void> {
    this.clearTimer();
    if (this.heartbeatTimer) this.heartbeatNow();
    if (this.pending && !this.closed) this.send({ ...this.pending, ts: this.now() });
    if (this.inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, FLUSH_WAIT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** Stops mirroring: nothing is sent after this (for an activity that is being cancelled or has ended). */
  close(): void {
    this.closed = true;
    this.clearTimer();
    this.clearHeartbeatTimer();
    this.pending = null;
  }

  private clearHeartbeatTimer(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fields(): ProgressFields {
    const now = this.now();
    // A finished stage counts in full even when it had nothing to count (total 0).
    const fraction = this.stageFinished ? 1 : this.total > 0 ? this.done / this.total : 0;
    const elapsed = now - this.stageStartedAt;
    const etaMs =
      this.stageFinished || (this.total > 0 && this.done >= this.total)
        ? 0
        : this.done > 0 && elapsed > 0
          ? Math.round((elapsed / this.done) * (this.total - this.done))
          : null;
    const percent = Math.min(100, ((this.stageIndex + fraction) / this.options.stages.length) * 100);
    return {
      jobId: this.options.jobId,
      owner: this.options.owner,
      stage: this.stage,
      stageIndex: this.stageIndex,
      stageCount: this.options.stages.length,
      done: this.done,
      total: this.total,
      unit: this.unit,
      percent: Math.round(percent * 100) / 100,
      message: this.message,
      etaMs,
      attempt: this.options.attempt,
      ts: now,
    };
  }

  private emit(always: boolean): void {
    const fields = this.fields();
    this.heartbeatIfDue(always, fields.ts);
    if (this.closed) return;
    this.refill(fields.ts);
    if (always || this.tokens >= 1) {
      // An immediate send supersedes anything still waiting: it carries newer state.
      this.clearTimer();
      this.send(fields);
      return;
    }
    this.pending = fields;
    if (!this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = null;
          // Recompute at send time so the trailing message carries a fresh timestamp and ETA.
          if (this.pending && !this.closed) {
            const latest = this.fields();
            this.refill(latest.ts);
            this.send(latest);
          }
        },
        Math.ceil((1 - this.tokens) * this.minIntervalMs),
      );
      this.timer.unref();
    }
  }

  private refill(now: number): void {
    const elapsed = now - this.refilledAt;
    this.tokens = elapsed === Number.POSITIVE_INFINITY ? RATE_BURST : Math.min(RATE_BURST, this.tokens + elapsed / this.minIntervalMs);
    this.refilledAt = now;
  }

  /**
   * Heartbeats now when forced, when the checkpoint changed or when the interval has passed; otherwise
   * leaves a trailing heartbeat that sends the latest state when the interval ends, so the last update
   * of a burst is never held back longer than one interval.
   */
  private heartbeatIfDue(always: boolean, now: number): void {
    const checkpointChanged = this.checkpoint !== undefined && JSON.stringify(this.checkpoint) !== this.heartbeatedCheckpoint;
    const sinceLast = now - this.lastHeartbeatAt;
    const intervalMs = this.heartbeatIntervalMs();
    if (always || checkpointChanged || sinceLast >= intervalMs) {
      this.heartbeatNow();
      return;
    }
    if (!this.heartbeatTimer && !this.closed) {
      this.heartbeatTimer = setTimeout(() => {
        this.heartbeatTimer = null;
        if (!this.closed) this.heartbeatNow();
      }, intervalMs - sinceLast);
      this.heartbeatTimer.unref();
    }
  }

  private heartbeatNow(): void {
    this.clearHeartbeatTimer();
    this.lastHeartbeatAt = this.now();
    this.heartbeats++;
    if (this.checkpoint !== undefined) this.heartbeatedCheckpoint = JSON.stringify(this.checkpoint);
    this.options.heartbeat({
      progress: { stage: this.stage, done: this.done, total: this.total, unit: this.unit, message: this.message },
      ...(this.checkpoint !== undefined ? { checkpoint: this.checkpoint } : {}),
    });
  }

  private send(fields: ProgressFields): void {
    this.pending = null;
    // Forced sends (stage changes, flush) take a token when there is one but never wait for it.
    this.tokens = Math.max(0, this.tokens - 1);
    if (this.inFlight.size >= MAX_IN_FLIGHT) {
      // Redis is slow: queueing more would only grow memory and deliver stale states late.
      this.dropped++;
      this.options.onDrop?.(new Error('Redis mirror backlog full'));
      return;
    }
    this.track(
      this.options.jobLog.publishProgress(fields).then((seq) => {
        this.published++;
        this.options.onPublished?.(seq, fields.ts);
      }),
    );
  }

  private track(publish: Promise<unknown>): void {
    const settled: Promise<void> = publish.then(
      () => undefined,
      (err: unknown) => {
        this.dropped++;
        this.options.onDrop?.(err);
      },
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
  }
}
