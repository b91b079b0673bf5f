import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { preciseNow } from '../lib/clock.js';
import { serveCommands } from '../lib/rpc.js';
import { CALL_TIME_PREFIX } from './synthetic-activity.js';

/**
 * The peer's producer: a BullMQ worker whose job calls job.updateProgress at `hz`, the way a BullMQ
 * user reports progress; the relay reads it back through QueueEvents.
 */
const JobData = z.object({ updates: z.number(), hz: z.number(), phase: z.number(), goKey: z.string() });
const Args = z.object({ redisUrl: z.string(), queue: z.string(), concurrency: z.number() });

let worker: Worker | null = null;
let reader: Redis | null = null;
const starts = new Map<string, Promise<void>>();

function startSignal(goKey: string): Promise<void> {
  let signal = starts.get(goKey);
  if (!signal) {
    signal = (async () => {
      while ((await reader!.exists(goKey)) === 0) await new Promise((r) => setTimeout(r, 20));
    })();
    starts.set(goKey, signal);
  }
  return signal;
}

serveCommands({
  async start(raw) {
    const args = Args.parse(raw);
    reader = new Redis(args.redisUrl);
    worker = new Worker(
      args.queue,
      async (job) => {
        const data = JobData.parse(job.data);
        await startSignal(data.goKey);
        const period = 1000 / data.hz;
        await new Promise((r) => setTimeout(r, data.phase * period));
        let calls = 0;
        let published = 0;
        let dropped = 0;
        const sends: Promise<void>[] = [];
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            calls++;
            const progress = { seq: calls, done: calls, total: data.updates, message: `${CALL_TIME_PREFIX}${preciseNow()}` };
            sends.push(
              job.updateProgress(progress).then(
                () => void published++,
                () => void dropped++,
              ),
            );
            if (calls >= data.updates) {
              clearInterval(timer);
              resolve();
            }
          }, period);
        });
        await Promise.all(sends);
        return { calls, published, dropped };
      },
      { connection: { url: args.redisUrl }, concurrency: args.concurrency, drainDelay: 1 },
    );
    await worker.waitUntilReady();
    return true;
  },
});
