import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisEnv } from './config.js';

/** What a connection is for: producers must never wait on Redis, subscribers and readers may. */
export type RedisRole = 'publisher' | 'subscriber' | 'reader';

/** A connection to one Redis server, or to a Redis Cluster: the commands asset-farm uses work on both. */
export type RedisClient = Redis | Cluster;

interface HostPort {
  host: string;
  port: number;
}

/**
 * Where a process's Redis is: one server by URL, a master found (and followed through a failover) by
 * asking Redis Sentinels, or a Redis Cluster found from some of its nodes.
 */
export type RedisConnection =
  | { url: string }
  | { sentinels: HostPort[]; name: string; password?: string; sentinelPassword?: string }
  | { cluster: HostPort[]; password?: string };

function hostPorts(list: string[]): HostPort[] {
  return list.map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: Number(entry.slice(at + 1)) };
  });
}

/** The connection the environment describes: REDIS_SENTINELS, else REDIS_CLUSTER_NODES, else REDIS_URL. */
export function redisConnection(env: RedisEnv): RedisConnection {
  if (env.REDIS_CLUSTER_NODES)
    return { cluster: hostPorts(env.REDIS_CLUSTER_NODES), ...(env.REDIS_PASSWORD ? { password: env.REDIS_PASSWORD } : {}) };
  if (!env.REDIS_SENTINELS) return { url: env.REDIS_URL };
  return {
    sentinels: hostPorts(env.REDIS_SENTINELS),
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
  if ('cluster' in connection) return `Redis Cluster at ${connection.cluster.map((n) => `${n.host}:${n.port}`).join(', ')}`;
  return `master "${connection.name}" via Sentinels ${connection.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')}`;
}

/**
 * Redis connection for a role. Producers (`publisher`) must never wait on Redis: with no offline queue
 * and a short command timeout, a call fails fast while Redis is down and the caller counts a drop.
 * Subscribers and readers keep the offline queue so they resume by themselves after a restart.
 * Through Sentinels, a failover looks like a restart: ioredis asks the Sentinels for the new master,
 * reconnects, subscribes again and re-sends a script the new master does not know (EVALSHA → EVAL).
 * In a cluster, each job's keys share a hash slot, so its script and reads go to one node, and classic
 * pub/sub reaches a subscriber on any node.
 */
export function createRedis(url: string, role: RedisRole, log?: Logger): Redis;
export function createRedis(connection: RedisConnection | string, role: RedisRole, log?: Logger): RedisClient;
export function createRedis(connection: RedisConnection | string, role: RedisRole, log?: Logger): RedisClient {
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
        : // No ready check (INFO) on a subscriber: ioredis writes a SUBSCRIBE at once while the
          // connection is still handshaking, the INFO after it then fails ("Connection in subscriber
          // mode"), ioredis reconnects and, that connection never having been ready, forgets the
          // channel for good: a socket that subscribed during a (re)connect would never hear its job
          // (ioredis#2037; common/redis.test.ts). SUBSCRIBE works while Redis loads its data anyway.
          { enableReadyCheck: false }),
  };
  const redis: RedisClient =
    'url' in target
      ? new Redis(target.url, options)
      : 'cluster' in target
        ? new Cluster(target.cluster, {
            clusterRetryStrategy: options.retryStrategy,
            enableOfflineQueue: options.enableOfflineQueue ?? true,
            redisOptions: { ...options, password: target.password },
          })
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
