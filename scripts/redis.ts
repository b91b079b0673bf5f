import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { startRedisServer } from './lib/redis-server.js';

/** `npm run redis`: a local redis-server with its data in DATA_DIR/redis, in the foreground until Ctrl-C. */
const port = Number(process.env.REDIS_PORT ?? 6379);
const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
const redis = await startRedisServer({ port, dir: path.join(dataDir, 'redis'), onLine: (l) => console.log(l) });
console.log(`Redis ready at ${redis.url}. Ctrl-C to stop.`);
const stop = async () => {
  await redis.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
