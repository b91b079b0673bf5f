import { readFileSync } from 'node:fs';
import { Cluster, type Result } from 'ioredis';
import type { RedisClient } from './redis.js';
import { JobControlMessage, jobControlChannel } from './job-control.js';
import {
  JobEventFields,
  JobMessage,
  ProgressFields,
  progressChannel,
  TERMINAL_EVENTS,
  type JobEventMessage,
  type ProgressMessage,
} from './progress.js';

import { readPublishedOwner } from './redis-scripts/published-message.js';

const PUBLISH_SCRIPT = readFileSync(new URL('./redis-scripts/publish-job-message.lua', import.meta.url), 'utf8');

const scriptsLoaded = new WeakSet<RedisClient>();

/** Replay log length per job: enough for a client that was offline through a whole stage. */
export const DEFAULT_LOG_MAX = 2000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** redis-scripts/publish-job-message.lua: the key count, then its keys and arguments. */
    publishJobMessages(numberOfKeys: number, ...keysAndArgs: Array<string | number>): Result<number[], Context>;
  }
}

/** Redis keys of one job. The `{jobId}` hash tag keeps them in one slot for Redis Cluster. */
export function jobKeys(jobId: string): { seq: string; state: string; log: string } {
  return { seq: `job:{${jobId}}:seq`, state: `job:{${jobId}}:state`, log: `job:{${jobId}}:log` };
}

/** What a subscriber is sent first: the latest progress and the latest event, and the sequence they bring it to. */
export interface JobSnapshot {
  seq: number;
  progress: ProgressMessage | null;
  event: JobEventMessage | null;
}

/**
 * How a client that has seen up to some seq catches up: the messages after it, or, when the replay log
 * no longer reaches back that far, the snapshot. `reset` is true when Redis holds less than the client
 * has already seen (its data was lost or expired): the client must drop what it has for the job.
 */
export type JobCatchUp = { kind: 'replay'; messages: JobMessage[] } | { kind: 'snapshot'; snapshot: JobSnapshot; reset: boolean };

const TERMINAL_KINDS = [...TERMINAL_EVENTS].join(',');

/** Most messages one script call publishes: bounds how long Redis is busy with one batch. */
const MAX_BATCH = 256;

/** Script calls that may wait for Redis at once; later messages queue for the next call. */
const MAX_IN_FLIGHT = 2;

/** A message waiting for a script call (see JobLog.publish), and its caller's promise. */
interface QueuedMessage {
  jobId: string;
  channel: string;
  type: 'progress' | 'event';
  payload: string;
  condition: '0' | '1' | '2';
  runId: string;
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

export interface JobLogOptions {
  ttlSeconds: number;
  logMax?: number;
}

/**
 * The Redis side of job progress: producers publish through it, the API reads snapshots and replays
 * from it. The atomic step lives in redis-scripts/publish-job-message.lua.
 */
export class JobLog {
  private readonly logMax: number;
  private queue: QueuedMessage[] = [];
  /** Script calls sent and not yet answered. */
  private inFlight = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: JobLogOptions,
  ) {
    this.logMax = options.logMax ?? DEFAULT_LOG_MAX;
    if (!scriptsLoaded.has(redis)) {
      redis.defineCommand('publishJobMessages', { lua: PUBLISH_SCRIPT });
      scriptsLoaded.add(redis);
    }
  }

  /** Publishes a progress update (validated against the shared schema); resolves to its sequence number. */
  async publishProgress(fields: ProgressFields): Promise<number> {
    const valid = ProgressFields.parse(fields);
    return this.publish('progress', valid.owner, valid.jobId, valid, '0');
  }

  /**
   * Publishes a workflow-level event (validated against the shared schema); resolves to its sequence
   * number. A `cancelling` event also tells the HPC workers to stop the job's running stage
   * (common/job-control.ts).
   */
  async publishEvent(fields: JobEventFields): Promise<number> {
    const valid = JobEventFields.parse(fields);
    const seq = await this.publish('event', valid.owner, valid.jobId, valid, '0');
    if (valid.event === 'cancelling') {
      const stop: JobControlMessage = { type: 'stop', jobId: valid.jobId, ts: valid.ts, ...(valid.runId ? { runId: valid.runId } : {}) };
      // Best effort: without it the cancel still reaches the stage with its next heartbeat's answer.
      await this.redis.publish(jobControlChannel(valid.jobId), JSON.stringify(JobControlMessage.parse(stop))).catch(() => 0);
    }
    return seq;
  }

  /**
   * Publishes a terminal event unless the job's latest event already is one (of the same run, when
   * fields.runId is given); resolves to its sequence number, or null when it was not needed. Atomic,
   * so API processes racing to reconcile the same closed workflow publish it once.
   */
  async publishTerminalIfMissing(fields: JobEventFields): Promise<number | null> {
    const valid = JobEventFields.parse(fields);
    if (!TERMINAL_EVENTS.has(valid.event)) throw new Error(`${valid.event} is not a terminal event`);
    const seq = await this.publish('event', valid.owner, valid.jobId, valid, '1');
    return seq === 0 ? null : seq;
  }

  /**
   * Publishes a non-terminal event only when the job's latest event is the terminal event of another
   * run than fields.runId: a Temporal reset brought a finished job back. Atomic, so API processes that
   * notice the same reset announce it once; null when nothing was published.
   */
  async publishIfSuperseded(fields: JobEventFields & { runId: string }): Promise<number | null> {
    const valid = JobEventFields.parse(fields);
    if (TERMINAL_EVENTS.has(valid.event)) throw new Error(`${valid.event} is a terminal event`);
    const seq = await this.publish('event', valid.owner, valid.jobId, valid, '2');
    return seq === 0 ? null : seq;
  }

  /**
   * Sends one message, batched Nagle-style: while fewer than MAX_IN_FLIGHT script calls wait for Redis
   * it goes at once; otherwise it waits for an answer and goes with everything queued meanwhile as one
   * call, in call order. A lone update pays no delay, and at 1,000 jobs x 10 Hz one call carries the
   * updates of a round trip: one command, one reply and one socket write for all of them.
   */
  private publish(
    type: 'progress' | 'event',
    owner: string,
    jobId: string,
    fields: object & { runId?: string },
    condition: '0' | '1' | '2',
  ): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({
        jobId,
        channel: progressChannel(owner, jobId),
        type,
        payload: JSON.stringify(fields),
        condition,
        runId: fields.runId ?? '',
        resolve,
        reject,
      });
      if (this.inFlight < MAX_IN_FLIGHT) this.flush();
    });
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const queued = this.queue;
    this.queue = [];
    // A cluster runs a script on one node, so there a batch holds one job's messages (one hash slot).
    const batches = this.redis instanceof Cluster ? groupBy(queued, (m) => m.jobId) : [queued];
    for (const batch of batches) {
      for (let i = 0; i < batch.length; i += MAX_BATCH) this.send(batch.slice(i, i + MAX_BATCH));
    }
  }

  private send(batch: QueuedMessage[]): void {
    const keys: string[] = [];
    const args: Array<string | number> = [this.options.ttlSeconds, this.logMax, TERMINAL_KINDS];
    for (const m of batch) {
      const k = jobKeys(m.jobId);
      keys.push(k.seq, k.state, k.log);
      args.push(m.channel, m.type, m.payload, m.condition, m.runId);
    }
    this.inFlight++;
    const answered = () => {
      if (--this.inFlight < MAX_IN_FLIGHT) this.flush();
    };
    this.redis.publishJobMessages(keys.length, ...keys, ...args).then(
      (seqs) => {
        answered();
        batch.forEach((m, i) => m.resolve(Number(seqs[i])));
      },
      (err: unknown) => {
        answered();
        batch.forEach((m) => m.reject(err));
      },
    );
  }

  /**
   * The owner the job's stream names (its latest event or progress), or null when Redis holds nothing
   * for it. Reads no more than that, so it can run before the caller knows the job is theirs.
   */
  async readOwner(jobId: string): Promise<string | null> {
    const [event, progress] = await this.redis.hmget(jobKeys(jobId).state, 'event', 'progress');
    return readPublishedOwner(event ?? progress ?? '') ?? null;
  }

  /** The job's latest state, or null when Redis holds nothing for it (never published, or expired). */
  async readSnapshot(jobId: string): Promise<JobSnapshot | null> {
    const keys = jobKeys(jobId);
    const [seqRaw, state] = await Promise.all([this.redis.get(keys.seq), this.redis.hgetall(keys.state)]);
    return toSnapshot(seqRaw, state);
  }

  /**
   * A job's seq, latest state and replay log, read in one MULTI so the three agree: what any catch-up is
   * computed from (catchUpFrom), so one read can serve every socket that needs the job.
   */
  async readStream(jobId: string): Promise<JobStreamRead> {
    const keys = jobKeys(jobId);
    const replies = await this.redis.multi().get(keys.seq).hgetall(keys.state).lrange(keys.log, 0, -1).exec();
    if (!replies) throw new Error(`Reading job ${jobId} from Redis was aborted`);
    for (const [err] of replies) if (err) throw err;
    const seqRaw = replies[0]![1] as string | null;
    const state = replies[1]![1] as Record<string, string>;
    const log = (replies[2]![1] as string[]).map((line) => JobMessage.parse(JSON.parse(line)));
    return { snapshot: toSnapshot(seqRaw, state), log };
  }

  /** Everything a client at `afterSeq` needs (catchUpFrom of one readStream). */
  async catchUp(jobId: string, afterSeq: number): Promise<JobCatchUp> {
    return catchUpFrom(await this.readStream(jobId), afterSeq);
  }
}

/** What readStream read of a job: its snapshot (null when Redis holds nothing for it) and its replay log. */
export interface JobStreamRead {
  snapshot: JobSnapshot | null;
  log: JobMessage[];
}

/**
 * How a client at `afterSeq` catches up from what was read: the messages after it when the log reaches
 * back that far, else the snapshot (flagged `reset` when Redis is behind the client).
 */
export function catchUpFrom(read: JobStreamRead, afterSeq: number): JobCatchUp {
  const snapshot = read.snapshot ?? { seq: 0, progress: null, event: null };
  if (snapshot.seq < afterSeq) return { kind: 'snapshot', snapshot, reset: true };
  const first = read.log[0];
  if (snapshot.seq > afterSeq && (!first || first.seq > afterSeq + 1)) return { kind: 'snapshot', snapshot, reset: false };
  return { kind: 'replay', messages: read.log.filter((m) => m.seq > afterSeq) };
}

function toSnapshot(seqRaw: string | null, state: Record<string, string>): JobSnapshot | null {
  if (seqRaw === null) return null;
  const progress = state.progress ? JobMessage.parse(JSON.parse(state.progress)) : null;
  const event = state.event ? JobMessage.parse(JSON.parse(state.event)) : null;
  return {
    seq: Number(seqRaw),
    progress: progress?.type === 'progress' ? progress : null,
    event: event?.type === 'event' ? event : null,
  };
}

function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}
