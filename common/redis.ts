import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisEnv } from './config.js';

/**
 * Where a process's Redis is: one server by URL, or a master found (and followed through a failover)
 * by asking Redis Sentinels.
 */
export type RedisConnection =
  | { url: string }
  | { sentinels: { host: string; port: number }[]; name: string; password?: string; sentinelPassword?: string };

/** The connection the environment describes: the Sentinels when REDIS_SENTINELS is set, else REDIS_URL. */
export function redisConnection(env: RedisEnv): RedisConnection {
  if (!env.REDIS_SENTINELS) return { url: env.REDIS_URL };
  return {
    sentinels: env.REDIS_SENTINELS.map((entry) => {
      const at = entry.lastIndexOf(':');
      return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
    }),
    name: env.REDIS_SENTINEL_MASTER,
    ...(env.REDIS_PASSWORD ? { password: env.REDIS_PASSWORD } : {}),
    ...(env.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {}),
  };
}

/** Where a connection points, for logs: never a password. */
export function describeRedis(connection: RedisConnection | string): string {
  if (typeof connection === 'string') return describeRedis({ url: connection });
  if ('url' in connection) {
    const url = new URL(connection.url);
    url.username = '';
    url.password = '';
    return url.toString();
  }
  return `master "${connection.name}" via Sentinels ${connection.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')}`;
}

/**
 * Redis connection for a role. Producers (`publisher`) must never wait on Redis: with no offline queue
 * and a short command timeout, a call fails fast while Redis is down and the caller counts a drop.
 * Subscribers and readers keep the offline queue so they resume by themselves after a restart.
 * Through Sentinels, a failover looks like a restart: ioredis asks the Sentinels for the new master,
 * reconnects, subscribes again and re-sends a script the new master does not know (EVALSHA → EVAL).
 */
export function createRedis(connection: RedisConnection | string, role: 'publisher' | 'subscriber' | 'reader', log?: Logger): Redis {
  const target: RedisConnection = typeof connection === 'string' ? { url: connection } : connection;
  const options: RedisOptions = {
    // The pid tells this process's connections apart in CLIENT LIST (one subscriber per API process).
    connectionName: `asset-farm:${role}:${process.pid}`,
    // Reconnect forever with capped backoff: Redis coming back must heal every process on its own.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    // A master demoted by a failover answers writes with READONLY until this connection moves on.
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...(role === 'publisher'
      ? { enableOfflineQueue: false, commandTimeout: 1000, maxRetriesPerRequest: 0 }
      : role === 'reader'
        ? { commandTimeout: 5000, maxRetriesPerRequest: 2 }
        : {}),
  };
  const redis =
    'url' in target
      ? new Redis(target.url, options)
      : new Redis({
          ...options,
          sentinels: target.sentinels,
          name: target.name,
          password: target.password,
          sentinelPassword: target.sentinelPassword,
          // Ask the Sentinels again, forever, when none answers (they may all be restarting).
          sentinelRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
          // Move to the new master as soon as a Sentinel announces the switch, not at the next error.
          failoverDetector: true,
        });
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
