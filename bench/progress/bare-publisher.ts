import { Redis } from 'ioredis';
import { z } from 'zod';
import { preciseNow } from '../lib/clock.js';
import { serveCommands } from '../lib/rpc.js';
import { CALL_TIME_PREFIX, SYNTHETIC_STAGE } from './synthetic-activity.js';

/**
 * Load for the floor: per job, a plain PUBLISH at `hz` of a message shaped and sized like the
 * project's progress messages, stamped with the publish call time. No Lua, no log, no coalescing.
 */
const Args = z.object({
  redisUrl: z.string(),
  jobs: z.array(z.object({ jobId: z.string(), phase: z.number() })),
  updates: z.number(),
  hz: z.number(),
  prefix: z.string(),
});

let redis: Redis | null = null;

serveCommands({
  async run(raw) {
    const args = Args.parse(raw);
    if (!redis) {
      // No offline queue, like the project's publisher: a publish either goes now or counts as dropped.
      redis = new Redis(args.redisUrl, { enableOfflineQueue: false, lazyConnect: true });
      await redis.connect();
    }
    const conn = redis;
    const period = 1000 / args.hz;
    const results = await Promise.all(
      args.jobs.map(async ({ jobId, phase }) => {
        await new Promise((r) => setTimeout(r, phase * period));
        let calls = 0;
        let published = 0;
        let dropped = 0;
        const sends: Promise<void>[] = [];
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            calls++;
            const now = preciseNow();
            const message = JSON.stringify({
              type: 'progress',
              seq: calls,
              jobId,
              owner: 'floor',
              stage: SYNTHETIC_STAGE,
              stageIndex: 0,
              stageCount: 1,
              done: calls,
              total: args.updates,
              unit: 'updates',
              percent: (calls / args.updates) * 100,
              message: `${CALL_TIME_PREFIX}${now}`,
              etaMs: null,
              attempt: 1,
              ts: now,
            });
            sends.push(
              conn.publish(`${args.prefix}${jobId}`, message).then(
                () => void published++,
                () => void dropped++,
              ),
            );
            if (calls >= args.updates) {
              clearInterval(timer);
              resolve();
            }
          }, period);
        });
        await Promise.all(sends);
        return { jobId, calls, published, dropped };
      }),
    );
    return results;
  },
});
