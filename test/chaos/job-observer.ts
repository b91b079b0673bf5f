import WebSocket from 'ws';

type Message = Record<string, unknown>;

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'terminated']);

/** What one observer saw of one job. */
export interface ObservedJob {
  jobId: string;
  user: string;
  /** Highest seq seen (live or through a snapshot). */
  lastSeq: number;
  /** The terminal event, once seen. */
  outcome: string | null;
  /** The failed event's error, for a failure. */
  error: { type: string; message: string } | null;
  /** Messages whose seq skipped past lastSeq + 1 with no snapshot to cover it. */
  gaps: number;
  /** Messages with a seq already seen. */
  duplicates: number;
  /** Snapshots with reset: true (the server lost the job's data). */
  resets: number;
  /** Snapshots, progress and events received: the stream moved, whatever its seq did (a reset lowers it). */
  received: number;
  /** Compute attempts above 1 that the stream showed (retrying events or progress of a later attempt). */
  retriesSeen: number;
  /** Stages this stream showed (in progress or events), and the stage count its progress gave. */
  stages: Set<string>;
  stageCount: number;
}

/** The figures of a chaos run. lost and gaps must be 0. */
export interface ChaosFigures {
  submitted: number;
  completed: number;
  failedCleanly: number;
  lost: number;
  gaps: number;
  duplicates: number;
  resets: number;
  reconnects: number;
  retriesSeen: number;
  /** Messages of a job the observer does not follow, or of another user than the socket's: must be 0. */
  foreign: number;
}

/**
 * Follows several users' jobs over /ws the way a careful client does: one socket per user, subscribing to
 * each job it is told about; when the socket drops (an API killed or restarted) it reconnects with a short
 * backoff and resumes each unfinished job with lastSeq. Counts per job what arrived: gaps, duplicates, the
 * outcome. A snapshot moves the job to its seq (that is the protocol's way to skip what no longer exists).
 */
export class JobObserver {
  readonly jobs = new Map<string, ObservedJob>();
  reconnects = 0;
  foreign = 0;
  private readonly sockets = new Map<string, WebSocket>();
  private stopped = false;

  constructor(
    private readonly wsUrl: string,
    private readonly tokenFor: (user: string) => string,
    /**
     * Subscribe with lastSeq 0, so the server replays each job from its first message instead of
     * starting from a snapshot: the stream must then show every stage, even of a job that had moved on.
     */
    private readonly options: { fromStart?: boolean } = {},
  ) {}

  private subscribeFrame(job: ObservedJob): string {
    const lastSeq = job.lastSeq > 0 || this.options.fromStart ? { lastSeq: job.lastSeq } : {};
    return JSON.stringify({ type: 'subscribe', jobId: job.jobId, ...lastSeq });
  }

  /** Follows jobId for user from its first message. */
  track(user: string, jobId: string): void {
    if (this.jobs.has(jobId)) return;
    this.jobs.set(jobId, {
      jobId,
      user,
      lastSeq: 0,
      outcome: null,
      error: null,
      gaps: 0,
      duplicates: 0,
      resets: 0,
      received: 0,
      retriesSeen: 0,
      stages: new Set(),
      stageCount: 0,
    });
    const ws = this.sockets.get(user);
    if (ws?.readyState === WebSocket.OPEN) ws.send(this.subscribeFrame(this.jobs.get(jobId)!));
    else if (!ws) this.connect(user);
  }

  private connect(user: string): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.wsUrl, ['asset-farm.v1', `bearer.${this.tokenFor(user)}`]);
    this.sockets.set(user, ws);
    ws.on('open', () => {
      for (const job of this.jobs.values()) if (job.user === user && !job.outcome) ws.send(this.subscribeFrame(job));
    });
    ws.on('message', (data) => this.onMessage(user, JSON.parse(data.toString()) as Message));
    ws.on('error', () => {}); // 'close' follows and reconnects
    ws.on('close', () => {
      if (this.stopped) return;
      this.reconnects++;
      setTimeout(() => this.connect(user), 200 + Math.random() * 300).unref();
    });
  }

  private onMessage(user: string, m: Message): void {
    const job = typeof m.jobId === 'string' ? this.jobs.get(m.jobId) : undefined;
    const carriesJob = m.type === 'snapshot' || m.type === 'progress' || m.type === 'event';
    if (carriesJob && (!job || job.user !== user || (m.owner !== undefined && m.owner !== user))) this.foreign++;
    if (!job) return;
    if (m.type === 'snapshot' || m.type === 'progress' || m.type === 'event') job.received++;
    if (m.type === 'snapshot') {
      const seq = m.seq as number;
      if (m.reset) job.resets++;
      if (seq > job.lastSeq || m.reset) job.lastSeq = seq;
      const event = m.event as Message | null;
      if (event && TERMINAL.has(event.event as string)) this.finish(job, event);
      return;
    }
    if (m.type !== 'progress' && m.type !== 'event') return;
    const seq = m.seq as number;
    if (seq <= job.lastSeq) job.duplicates++;
    else {
      if (seq !== job.lastSeq + 1) job.gaps++;
      job.lastSeq = seq;
    }
    if (typeof m.stage === 'string') job.stages.add(m.stage);
    if (typeof m.stageCount === 'number') job.stageCount = Math.max(job.stageCount, m.stageCount);
    if (m.type === 'event' && m.event === 'retrying') job.retriesSeen++;
    if (m.type === 'event' && TERMINAL.has(m.event as string)) this.finish(job, m);
  }

  private finish(job: ObservedJob, event: Message): void {
    job.outcome = event.event as string;
    const error = event.error as { type: string; message: string } | undefined;
    job.error = error ? { type: error.type, message: error.message } : null;
  }

  /** Resolves when every tracked job has its outcome, or after timeoutMs (figures() then counts the rest as lost). */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = [...this.jobs.values()].filter((j) => !j.outcome);
      if (open.length === 0) return;
      if (Date.now() > deadline) return; // figures() reports them as lost; the test asserts lost = 0
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  figures(): ChaosFigures {
    const jobs = [...this.jobs.values()];
    return {
      submitted: jobs.length,
      completed: jobs.filter((j) => j.outcome === 'completed').length,
      // A failure counts as clean when the artist got a reason for it.
      failedCleanly: jobs.filter((j) => j.outcome === 'failed' && j.error && j.error.message.length > 0).length,
      lost: jobs.filter((j) => !j.outcome || (j.outcome === 'failed' && !j.error)).length,
      gaps: jobs.reduce((n, j) => n + j.gaps, 0),
      duplicates: jobs.reduce((n, j) => n + j.duplicates, 0),
      resets: jobs.reduce((n, j) => n + j.resets, 0),
      reconnects: this.reconnects,
      retriesSeen: jobs.reduce((n, j) => n + j.retriesSeen, 0),
      foreign: this.foreign,
    };
  }

  close(): void {
    this.stopped = true;
    for (const ws of this.sockets.values()) ws.terminate();
  }
}
