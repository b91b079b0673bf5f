import { readFileSync } from 'node:fs';
import type { Result } from 'ioredis';
import { z } from 'zod';
import { priorityName } from './job-priority.js';
import { HpcQueueName } from './jobs.js';
import { JobId, OwnerId } from './progress.js';
import type { RedisClient } from './redis.js';

const QUEUE_SCRIPT = readFileSync(new URL('./redis-scripts/hpc-queue.lua', import.meta.url), 'utf8');
const scriptsLoaded = new WeakSet<RedisClient>();

declare module 'ioredis' {
  interface RedisCommander<Context> {
    hpcQueue(...args: (string | number)[]): Result<string, Context>;
  }
}

/**
 * Where a job's stage waits for an HPC slot: its task queue and the Temporal priority its activities
 * inherit from the workflow. The workflow sends it with each stage's `stage-started` event.
 */
export const HpcWaitSchema = z.object({
  queue: HpcQueueName,
  priorityKey: z.number().int().min(1).max(100),
  fairnessKey: z.string().max(256),
  fairnessWeight: z.number().positive().max(1000),
});
export type HpcWait = z.infer<typeof HpcWaitSchema>;

/** What an HPC worker tells the queue of itself with every stage it starts or finishes, and now and then. */
export interface HpcWorkerSlots {
  /** Unique per worker process (Temporal's worker identity). */
  workerId: string;
  /** Its maxConcurrentActivityTaskExecutions. */
  slots: number;
  /** Stages running on it now. */
  busy: number;
}

/** What a started stage had waited, for the wait-time metric. */
export interface HpcWaitEnded {
  waitedMs: number;
  priorityKey: number;
  fairnessKey: string;
}

/** One (priority, fairness key) group of waiting jobs, for /metrics. */
export interface HpcQueueShare {
  priorityKey: number;
  fairnessKey: string;
  waiting: number;
  /** How long the group's longest-waiting job has waited. */
  oldestWaitMs: number;
}

/**
 * Waiting jobs are told their places at most this often. Every stage that starts moves every job behind
 * it, so telling each change would publish O(waiting²) frames while a long line drains; once a second
 * is O(waiting) a second, and a place is never more than a second old.
 */
export const TELL_PLACES_EVERY_MS = 1000;

/** A worker's entry lives this long without news: a worker that died stops counting as capacity. */
export const WORKER_TTL_MS = 45_000;
/** How often a worker refreshes its entry (well inside WORKER_TTL_MS). */
export const WORKER_REFRESH_MS = 15_000;

const QUEUES_KEY = 'hpcq:queues';
/** jobId -> the queue its stages wait on, so whoever sees the job end can take it out of that line. */
const JOB_QUEUES_KEY = 'hpcq:jobs';

/** Redis keys of one HPC queue's waiting line; the `{queue}` hash tag keeps them in one Redis Cluster slot. */
function queueKeys(queue: string): string[] {
  const at = (name: string) => `hpcq:{${queue}}:${name}`;
  return ['waiting', 'entries', 'shares', 'counters', 'bases', 'arrivals', 'workers', 'handing', 'durations', 'told'].map(at);
}

/**
 * The waiting line of each HPC task queue, as Temporal's fair, priority-ordered matcher will dispatch
 * it, so an artist can be told honestly how many jobs start before theirs. Temporal does not expose the
 * order of a task queue's backlog (DescribeTaskQueue gives counts per priority, not places), so this
 * follows the same rules on the same events, in one Redis script (redis-scripts/hpc-queue.lua):
 * a stage joins when its workflow announces it (just before the activity is scheduled), leaves when an
 * HPC worker starts it or the job ends, and every change tells each waiting job its place on its own
 * progress channel as a `queue` frame (common/socket-protocol.ts).
 *
 * Where it can differ from the server: a retried attempt of a failed stage waits without a place (it
 * is not announced); two stages announced within the same few milliseconds may reach the server in
 * the other order; the server's fairness counters are approximate past thousands of fairness keys,
 * and forgotten when a task queue partition is unloaded after being idle. Each of these moves a
 * place by one at most while the queue is busy; the end-to-end test checks the order on the dev server.
 */
export class HpcQueueBook {
  /** Per queue, the timer of a `tell` this process owes: places changed within TELL_PLACES_EVERY_MS of the last telling. */
  private readonly tells = new Map<string, NodeJS.Timeout>();
  private readonly tellEveryMs: number;

  constructor(
    private readonly redis: RedisClient,
    options: { tellEveryMs?: number } = {},
  ) {
    this.tellEveryMs = options.tellEveryMs ?? TELL_PLACES_EVERY_MS;
    if (!scriptsLoaded.has(redis)) {
      redis.defineCommand('hpcQueue', { numberOfKeys: queueKeys('x').length, lua: QUEUE_SCRIPT });
      scriptsLoaded.add(redis);
    }
  }

  /**
   * Runs one operation of the line's script. When it changed places that may not be told yet, the script
   * says in how many ms (`<ms>~` before its answer) and this process tells them then: whichever process
   * of the farm gets there first publishes, the others find nothing left to tell.
   */
  private async run(queue: string, op: string, ...args: (string | number)[]): Promise<string> {
    const raw = await this.redis.hpcQueue(...queueKeys(queue), op, Date.now(), queue, this.tellEveryMs, ...args);
    const deferred = /^(\d+)~/.exec(raw);
    if (!deferred) return raw;
    this.tellLater(queue, Number(deferred[1]));
    return raw.slice(deferred[0].length);
  }

  private tellLater(queue: string, ms: number): void {
    if (this.tells.has(queue)) return;
    const timer = setTimeout(() => {
      this.tells.delete(queue);
      // Best effort, like every place: the next change of the line, or another process's telling, makes up for it.
      this.tell(queue).catch(() => undefined);
    }, ms);
    // A process on its way out does not wait for it: the next change of the line tells the places.
    timer.unref();
    this.tells.set(queue, timer);
  }

  /** Publishes the places that changed since they were last told, if that was TELL_PLACES_EVERY_MS ago (else schedules it). */
  async tell(queue: string): Promise<void> {
    await this.run(queue, 'tell');
  }

  /** A stage of the job waits for a slot of wait.queue from now; every waiting job is told its place. */
  async join(jobId: string, owner: string, wait: HpcWait): Promise<'waiting' | 'handed'> {
    const { queue, priorityKey, fairnessKey, fairnessWeight } = HpcWaitSchema.parse(wait);
    const [id, who] = [JobId.parse(jobId), OwnerId.parse(owner)];
    // Sent together, one round trip: the line's script reads neither index, and Redis runs them in order.
    const [, , answer] = await Promise.all([
      this.redis.sadd(QUEUES_KEY, queue),
      this.redis.hset(JOB_QUEUES_KEY, id, queue),
      this.run(queue, 'join', id, who, priorityKey, fairnessKey, fairnessWeight),
    ]);
    return answer === 'handed' ? 'handed' : 'waiting';
  }

  /** A worker started the job's stage: it leaves the line; null when it had not waited in it. */
  async started(queue: string, jobId: string, worker: HpcWorkerSlots): Promise<HpcWaitEnded | null> {
    const answer = await this.run(queue, 'start', jobId, worker.workerId, worker.slots, worker.busy, WORKER_TTL_MS);
    const [waited, priority, ...key] = answer.split('|');
    if (!waited || !priority) return null;
    return { waitedMs: Number(waited), priorityKey: Number(priority), fairnessKey: key.join('|') };
  }

  /** A worker finished a stage that ran for durationMs: what the next estimates of waiting time use. */
  async finished(queue: string, jobId: string, worker: HpcWorkerSlots, durationMs: number): Promise<void> {
    await this.run(queue, 'finish', jobId, worker.workerId, worker.slots, worker.busy, WORKER_TTL_MS, Math.round(durationMs));
  }

  /** The job ended or is being cancelled: whatever of it waited leaves the line (of `queue`, else the one it joined). */
  async leave(jobId: string, queue?: string): Promise<void> {
    const line = queue ?? (await this.redis.hget(JOB_QUEUES_KEY, jobId));
    await Promise.all([line ? this.run(line, 'leave', jobId) : undefined, this.redis.hdel(JOB_QUEUES_KEY, jobId)]);
  }

  /** The job's `queue` frame (common/socket-protocol.ts) while one of its stages waits, else null: for a client that just subscribed. */
  async placeOf(jobId: string): Promise<string | null> {
    const queue = await this.redis.hget(JOB_QUEUES_KEY, jobId);
    if (!queue) return null;
    return (await this.run(queue, 'place', jobId)) || null;
  }

  /** Job ids in the order the line expects them to start: for tests and for an engineer's look (RUNBOOK.md). */
  async line(queue: string): Promise<string[]> {
    const members = await this.redis.zrange(queueKeys(queue)[0]!, 0, -1);
    return members.map((m) => m.slice(m.lastIndexOf(':') + 1));
  }

  /** A worker's slots (0 when it stops), so a stage arriving at a free slot is known to start at once. */
  async registerWorker(queue: string, worker: HpcWorkerSlots): Promise<void> {
    await this.run(queue, 'worker', '', worker.workerId, worker.slots, worker.busy, WORKER_TTL_MS);
  }

  /** Every queue jobs have waited in, for /metrics. */
  async queues(): Promise<string[]> {
    return (await this.redis.smembers(QUEUES_KEY)).filter((q) => HpcQueueName.safeParse(q).success);
  }

  /** Waiting jobs of a queue by priority and fairness key, with how long the oldest of each has waited. */
  async shares(queue: string, now = Date.now()): Promise<HpcQueueShare[]> {
    const [entries, all] = await Promise.all([this.redis.hkeys(queueKeys(queue)[1]!), this.redis.hgetall(queueKeys(queue)[2]!)]);
    const groups = new Map<string, HpcQueueShare>();
    // Only jobs in the line: a handed-over one is already starting.
    for (const value of entries.map((jobId) => all[jobId]).filter((v) => v !== undefined)) {
      const match = /^(\d+)\|(\d+)\|[\d.]+\|[^|]+\|(.*)$/.exec(value);
      if (!match) continue;
      const [, priority, enqueuedAt, fairnessKey] = match;
      const id = `${priority}|${fairnessKey}`;
      const group = groups.get(id) ?? { priorityKey: Number(priority), fairnessKey: fairnessKey!, waiting: 0, oldestWaitMs: 0 };
      group.waiting++;
      group.oldestWaitMs = Math.max(group.oldestWaitMs, now - Number(enqueuedAt));
      groups.set(id, group);
    }
    return [...groups.values()];
  }
}

export { priorityName };
