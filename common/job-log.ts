import { readFileSync } from 'node:fs';
import type { Redis, Result } from 'ioredis';
import {
  JobMessage,
  progressChannel,
  type JobEventFields,
  type JobEventMessage,
  type ProgressFields,
  type ProgressMessage,
} from './progress.js';

const PUBLISH_SCRIPT = readFileSync(new URL('./redis-scripts/publish-job-message.lua', import.meta.url), 'utf8');

const scriptsLoaded = new WeakSet<Redis>();

/** Replay log length per job: enough for a client that was offline through a whole stage. */
export const DEFAULT_LOG_MAX = 2000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    publishJobMessage(
      seqKey: string,
      stateKey: string,
      logKey: string,
      channel: string,
      type: string,
      payload: string,
      ttlSeconds: number,
      logMax: number,
    ): Result<number, Context>;
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

  constructor(
    private readonly redis: Redis,
    private readonly options: JobLogOptions,
  ) {
    this.logMax = options.logMax ?? DEFAULT_LOG_MAX;
    if (!scriptsLoaded.has(redis)) {
      redis.defineCommand('publishJobMessage', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
      scriptsLoaded.add(redis);
    }
  }

  /** Publishes a progress update; resolves to its sequence number. */
  publishProgress(fields: ProgressFields): Promise<number> {
    return this.publish('progress', fields.owner, fields.jobId, fields);
  }

  /** Publishes a workflow-level event; resolves to its sequence number. */
  publishEvent(fields: JobEventFields): Promise<number> {
    return this.publish('event', fields.owner, fields.jobId, fields);
  }

  private publish(type: 'progress' | 'event', owner: string, jobId: string, fields: object): Promise<number> {
    const keys = jobKeys(jobId);
    return this.redis.publishJobMessage(
      keys.seq,
      keys.state,
      keys.log,
      progressChannel(owner, jobId),
      type,
      JSON.stringify(fields),
      this.options.ttlSeconds,
      this.logMax,
    );
  }

  /** The job's latest state, or null when Redis holds nothing for it (never published, or expired). */
  async readSnapshot(jobId: string): Promise<JobSnapshot | null> {
    const keys = jobKeys(jobId);
    const [seqRaw, state] = await Promise.all([this.redis.get(keys.seq), this.redis.hgetall(keys.state)]);
    if (seqRaw === null) return null;
    const progress = state.progress ? JobMessage.parse(JSON.parse(state.progress)) : null;
    const event = state.event ? JobMessage.parse(JSON.parse(state.event)) : null;
    return {
      seq: Number(seqRaw),
      progress: progress?.type === 'progress' ? progress : null,
      event: event?.type === 'event' ? event : null,
    };
  }

  /**
   * Messages with seq > afterSeq, in order. Returns null when the log no longer reaches back that far
   * (trimmed or expired): the caller should fall back to the snapshot.
   */
  async readSince(jobId: string, afterSeq: number): Promise<JobMessage[] | null> {
    const raw = await this.redis.lrange(jobKeys(jobId).log, 0, -1);
    const messages = raw.map((line) => JobMessage.parse(JSON.parse(line)));
    const first = messages[0];
    if (first && first.seq > afterSeq + 1) return null;
    return messages.filter((m) => m.seq > afterSeq);
  }
}
