import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestRedis } from '../test/helpers/redis.js';
import { waitFor } from '../scripts/lib/wait.js';
import { HpcQueueBook } from './hpc-queue.js';
import { QueueMessage } from './socket-protocol.js';

const WAIT = { queue: 'hpc-tell', priorityKey: 3, fairnessKey: 'studio', fairnessWeight: 1 };
const WORKER = { workerId: 'w1', slots: 1, busy: 1 };

describe('HpcQueueBook tells places at most once per interval', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let client: Redis;
  let subscriber: Redis;
  const frames: QueueMessage[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url);
    subscriber = new Redis(redis.url);
    subscriber.on('pmessage', (_p: string, _c: string, raw: string) => {
      if (raw.startsWith('{"type":"queue"')) frames.push(QueueMessage.parse(JSON.parse(raw)));
      else if (raw === 'marker') frames.push({ marker: true } as unknown as QueueMessage);
    });
    await subscriber.psubscribe('progress:*');
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    client?.disconnect();
    subscriber?.disconnect();
    await redis?.stop();
  });

  /** Everything published so far has arrived: a marker sent after it is received. */
  async function drained(): Promise<void> {
    const before = frames.length;
    await client.publish('progress:x:marker', 'marker');
    await waitFor(() => frames.slice(before).some((f) => (f as unknown as { marker?: boolean }).marker), {
      timeoutMs: 5000,
      what: 'the marker',
    });
    frames.splice(
      frames.findIndex((f) => (f as unknown as { marker?: boolean }).marker),
      1,
    );
  }

  it.each([50, 200])(
    '%i jobs join and half of them start within one interval: each is told its place at most twice, and the last telling is right',
    async (n) => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(1_000_000 * n);
      frames.length = 0;
      const queue = `${WAIT.queue}-${n}`;
      const book = new HpcQueueBook(client, { tellEveryMs: 1000 });
      await book.registerWorker(queue, WORKER);
      const ids = Array.from({ length: n }, (_, i) => `asset-artist${i % 5}-${String(i).padStart(4, '0')}`);
      for (const [i, jobId] of ids.entries()) expect(await book.join(jobId, `artist${i % 5}`, { ...WAIT, queue })).toBe('waiting');
      vi.setSystemTime(Date.now() + 10);
      const line = await book.line(queue);
      expect(line).toHaveLength(n);
      for (const jobId of line.slice(0, n / 2)) expect(await book.started(queue, jobId, WORKER)).toMatchObject({ waitedMs: 10 });
      await drained();
      // The first join was told at once; every later change in the interval waits for the next telling.
      // Each start withdraws its own job's place at once (waiting: false).
      expect(frames.filter((f) => f.waiting)).toHaveLength(1);
      expect(frames.filter((f) => !f.waiting).map((f) => f.jobId)).toEqual(line.slice(0, n / 2));

      // Too early: nothing more.
      await book.tell(queue);
      await drained();
      expect(frames.filter((f) => f.waiting)).toHaveLength(1);

      vi.setSystemTime(Date.now() + 1000);
      await book.tell(queue);
      await drained();
      const rest = await book.line(queue);
      expect(rest).toEqual(line.slice(n / 2));
      const told = frames.filter((f) => f.waiting);
      // One telling of everyone still waiting, in order.
      expect(told.slice(1).map((f) => [f.jobId, f.ahead])).toEqual(rest.map((jobId, ahead) => [jobId, ahead]));
      const perJob = new Map<string, number>();
      for (const f of told) perJob.set(f.jobId, (perJob.get(f.jobId) ?? 0) + 1);
      expect(Math.max(...perJob.values())).toBeLessThanOrEqual(2);

      // Nothing changed since: a telling publishes nothing.
      vi.setSystemTime(Date.now() + 5000);
      const count = frames.length;
      await book.tell(queue);
      await drained();
      expect(frames.length).toBe(count);

      // A job leaving the middle of the line (its job ended) moves only those behind it.
      const half = Math.floor(rest.length / 2);
      const middle = rest[half]!;
      await book.leave(middle, queue);
      await drained();
      const after = frames.slice(count);
      expect(after[0]).toMatchObject({ jobId: middle, waiting: false });
      expect(after.slice(1).map((f) => [f.jobId, f.ahead])).toEqual(rest.slice(half + 1).map((jobId, i) => [jobId, half + i]));
    },
  );
});
