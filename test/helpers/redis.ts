import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedisServer, type RunningRedis } from '../../scripts/lib/redis-server.js';
import { freePort } from '../../scripts/lib/wait.js';

/** A throwaway real redis-server on a free port; stop() also removes its data folder. */
export async function startTestRedis(options: { persist?: boolean } = {}): Promise<RunningRedis & { dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-redis-'));
  const redis = await startRedisServer({ port: await freePort(), dir, persist: options.persist ?? false });
  return {
    ...redis,
    dir,
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
