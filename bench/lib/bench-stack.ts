import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { Client, Connection } from '@temporalio/client';
import { startRedisServer, type RunningRedis } from '../../scripts/lib/redis-server.js';
import { startDevServer, waitForPoller, type RunningDevServer } from '../../scripts/lib/temporal-server.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { BENCH_HPC_QUEUE, BENCH_ORCHESTRATOR_QUEUE } from '../progress/bench-queues.js';
import { API_NODE_FLAGS } from '../../api/node-flags.js';
import { spawnNode, type BenchChild } from './rpc.js';

/**
 * What every benchmark of a run shares: one redis-server, one Temporal dev server and a data folder,
 * started by the runner on free loopback ports and stopped at the end. Components (API, workers,
 * helpers) are started by each benchmark as separate processes with `env`.
 */
export interface BenchInfra {
  redis: RunningRedis;
  temporal: RunningDevServer;
  client: Client;
  dataDir: string;
  secret: string;
  env: NodeJS.ProcessEnv;
  /** A token for user, as the identity provider would sign it. */
  tokenFor(user: string): string;
  stop(): Promise<void>;
}

export async function startInfra(): Promise<BenchInfra> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-bench-'));
  const [redis, temporal] = await Promise.all([
    freePort().then((port) => startRedisServer({ port, dir: path.join(dataDir, 'redis'), persist: false })),
    startDevServer({ port: 0, uiPort: null, dbFile: null }),
  ]);
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  const secret = randomBytes(32).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redis.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    DATA_DIR: dataDir,
    JWT_SECRET: secret,
    DEV_LOGIN: 'false',
    LOG_LEVEL: 'warn',
  };
  return {
    redis,
    temporal,
    client,
    dataDir,
    secret,
    env,
    tokenFor: (user) => jwt.sign({ sub: user }, secret, { algorithm: 'HS256', expiresIn: 6 * 3600 }),
    async stop() {
      await connection.close();
      await Promise.all([temporal.stop(), redis.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RunningApi {
  url: string;
  wsUrl: string;
  process: BenchChild;
  stop(): Promise<void>;
}

/**
 * The per-user socket bounds, opened for the load shape: the benchmarks follow each job on its own socket
 * (1,000 jobs of 10 owners = 100 sockets a user, 10,000 fan-out sockets of one owner), where an artist's
 * page holds one socket for all their jobs. Everything else of the API runs at its defaults.
 */
const BENCH_SOCKET_BOUNDS: NodeJS.ProcessEnv = {
  API_USER_MAX_SOCKETS: '100000',
  API_USER_MAX_SUBSCRIPTIONS: '100000',
};

/** Starts the real API (api/main.ts) as its own process and resolves once /readyz answers. */
export async function startApi(infra: BenchInfra, extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningApi> {
  const port = await freePort();
  const proc = spawnNode('api', 'api/main.ts', {
    ipc: false,
    execArgv: [...API_NODE_FLAGS],
    env: { ...infra.env, API_PORT: String(port), API_HOST: '127.0.0.1', ...BENCH_SOCKET_BOUNDS, ...extraEnv },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`api exited:\n${proc.tail.join('\n')}`);
        return (await fetch(`${url}/readyz`)).ok;
      },
      { timeoutMs: 90_000, what: 'the API', intervalMs: 200 },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { url, wsUrl: `ws://127.0.0.1:${port}/ws`, process: proc, stop: () => proc.stop() };
}

/**
 * Starts the benchmark worker (bench/progress/bench-worker.ts): the synthetic compute activity on a
 * worker configured like the HPC one, plus the benchmark workflow. Resolves once both queues are polled.
 */
export async function startBenchWorker(infra: BenchInfra, maxConcurrentActivities: number): Promise<BenchChild> {
  const proc = spawnNode('bench-worker', 'bench/progress/bench-worker.ts', {
    ipc: false,
    env: { ...infra.env, HPC_MAX_CONCURRENT_ACTIVITIES: String(maxConcurrentActivities) },
  });
  try {
    for (const [taskQueue, kind] of [
      [BENCH_HPC_QUEUE, 'activity'],
      [BENCH_ORCHESTRATOR_QUEUE, 'workflow'],
    ] as const) {
      await waitForPoller({
        address: infra.temporal.address,
        namespace: infra.temporal.namespace,
        taskQueue,
        kind,
        pid: proc.pid,
        timeoutMs: 180_000,
        isAlive: () => proc.child.exitCode === null,
      });
    }
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}\n${proc.tail.join('\n')}`);
  }
  return proc;
}
