import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Redis connection for a role. Producers (`publisher`) must never wait on Redis: with no offline queue
 * and a short command timeout, a call fails fast while Redis is down and the caller counts a drop.
 * Subscribers and readers keep the offline queue so they resume by themselves after a restart.
 */
export function createRedis(url: string, role: 'publisher' | 'subscriber' | 'reader', log?: Logger): Redis {
  const options: RedisOptions = {
    // The pid tells this process's connections apart in CLIENT LIST (one subscriber per API process).
    connectionName: `asset-farm:${role}:${process.pid}`,
    // Reconnect forever with capped backoff: Redis coming back must heal every process on its own.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    ...(role === 'publisher'
      ? { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 0 }
      : role === 'reader'
        ? { commandTimeout: 5000, maxRetriesPerRequest: 2 }
        : {}),
  };
  const redis = new Redis(url, options);
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log each distinct one once.
    if (err.message !== lastError) log?.warn({ err: err.message, role }, 'Redis connection error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) log?.info({ role }, 'Redis connection restored');
    lastError = '';
  });
  return redis;
}
