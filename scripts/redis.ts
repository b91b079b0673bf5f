import path from 'node:path';
import { ConfigError, PROJECT_ROOT } from '../common/config.js';
import { portFromEnv } from './lib/ports.js';
import { startRedisServer } from './lib/redis-server.js';

/** `npm run redis`: a local redis-server on 127.0.0.1 with its data in DATA_DIR/redis, in the foreground until Ctrl-C. */
let port: number;
try {
  port = portFromEnv('REDIS_PORT', 6379);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[redis] ${err.message}`);
  process.exit(78);
}
const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
const redis = await startRedisServer({ port, dir: path.join(dataDir, 'redis'), onLine: (l) => console.log(l) });
console.log(`Redis ready at ${redis.url}. Ctrl-C to stop.`);
const stop = async () => {
  await redis.stop();
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());
