import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { inject } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { startRedisServer, type RunningRedis } from '../../scripts/lib/redis-server.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { startDevServer, waitForPoller, type RunningDevServer } from '../../scripts/lib/temporal-server.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { TEST_BUNDLE_CACHE_DIR } from './workflow-workers.js';

export interface TestStack {
  apiUrl: string;
  wsUrl: string;
  redisUrl: string;
  temporalAddress: string;
  namespace: string;
  dataDir: string;
  secret: string;
  redis: RunningRedis;
  temporal: RunningDevServer;
  processes: Map<string, ServiceProcess>;
  env: NodeJS.ProcessEnv;
  /** A signed token for user, as the studio's identity provider would issue it. */
  tokenFor(user: string, options?: jwt.SignOptions, claims?: Record<string, unknown>): string;
  /**
   * Starts (or restarts) one of the node components with the stack's environment. `instance` runs another
   * one of it beside the first, under its own key in `processes` and with its own variables (another host's
   * DATA_DIR and SCRATCH_DIR, say).
   */
  startComponent(name: ComponentName, instance?: { id: string; env?: NodeJS.ProcessEnv }): Promise<ServiceProcess>;
  /** Starts redis-server again on the same port and data folder (after a test killed it). */
  restartRedis(): Promise<RunningRedis>;
  /** Stops the Temporal dev server and starts it again on the same port (state survives with `temporalDbFile`). */
  restartTemporal(): Promise<RunningDevServer>;
  stop(): Promise<void>;
}

export type ComponentName = 'worker:orchestrator' | 'worker:hpc' | 'api';
const SCRIPTS: Record<ComponentName, string> = {
  'worker:orchestrator': 'worker/orchestrator.ts',
  'worker:hpc': 'worker/hpc.ts',
  api: 'api/main.ts',
};

/**
 * The real stack for end-to-end tests: redis-server, the Temporal dev server, both workers and the API,
 * each its own process on free loopback ports, with data in a temporary folder removed by stop().
 */
export async function startStack(
  options: {
    components?: ComponentName[];
    env?: NodeJS.ProcessEnv;
    componentEnv?: Partial<Record<ComponentName, NodeJS.ProcessEnv>>;
    /** Keep Temporal's state in a SQLite file in the data folder, so restartTemporal() keeps running workflows. */
    temporalDbFile?: boolean;
    /** Every log line of the node components, e.g. to count error lines under load. */
    onLine?: (component: ComponentName, line: string) => void;
  } = {},
): Promise<TestStack> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-test-'));
  const cliPath = inject('temporalCliPath');
  if (cliPath) process.env.TEMPORAL_CLI_PATH = cliPath;
  const temporalPort = await freePort();
  const dbFile = options.temporalDbFile ? path.join(dataDir, 'temporal', 'temporal.sqlite') : null;
  const [redis, temporal] = await Promise.all([
    freePort().then((port) => startRedisServer({ port, dir: path.join(dataDir, 'redis') })),
    startDevServer({ port: temporalPort, uiPort: null, dbFile }),
  ]);
  const apiPort = await freePort();
  const secret = randomBytes(32).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redis.url,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    DATA_DIR: dataDir,
    // One workflow bundle for the whole test run, not a webpack build per stack.
    WORKFLOW_BUNDLE_CACHE_DIR: TEST_BUNDLE_CACHE_DIR,
    API_PORT: String(apiPort),
    API_HOST: '127.0.0.1',
    JWT_SECRET: secret,
    DEV_LOGIN: 'true',
    // Suites sign in many users through the dev login, all from 127.0.0.1: more than the 10 a minute one
    // address gets by default. The limit itself is proven in test/reliability/api-bounds.test.ts.
    API_LOGIN_PER_MINUTE: '1000',
    // Every game-ready job renders a turntable: tiny in tests, where two cores are shared by everything.
    PREVIEW_FRAMES: '4',
    PREVIEW_SIZE: '64',
    PREVIEW_SAMPLES: '1',
    PREVIEW_THREADS: '1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...options.env,
  };
  const processes = new Map<string, ServiceProcess>();
  const verbose = Boolean(process.env.TEST_VERBOSE);

  async function startComponent(name: ComponentName, instance?: { id: string; env?: NodeJS.ProcessEnv }): Promise<ServiceProcess> {
    const id = instance?.id ?? name;
    await processes.get(id)?.stop();
    const proc = new ServiceProcess(id, process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, SCRIPTS[name])], {
      env: { ...env, ...options.componentEnv?.[name], ...instance?.env },
      cwd: PROJECT_ROOT,
      onLine:
        verbose || options.onLine
          ? (line) => {
              if (verbose) console.log(`[${id}] ${line}`);
              options.onLine?.(name, line);
            }
          : undefined,
    });
    processes.set(id, proc);
    if (name === 'api') {
      await waitFor(
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`api exited:\n${proc.tail.join('\n')}`);
          return (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok;
        },
        { timeoutMs: 60_000, what: 'the API' },
      );
    } else {
      await waitForPoller({
        address: temporal.address,
        namespace: temporal.namespace,
        taskQueue: name === 'worker:hpc' ? String(env.HPC_TASK_QUEUE ?? HPC_TASK_QUEUE) : ORCHESTRATOR_TASK_QUEUE,
        kind: name === 'worker:hpc' ? 'activity' : 'workflow',
        pid: proc.child.pid!,
        timeoutMs: 120_000,
        isAlive: () => proc.child.exitCode === null,
      });
    }
    return proc;
  }

  const stack: TestStack = {
    apiUrl: `http://127.0.0.1:${apiPort}`,
    wsUrl: `ws://127.0.0.1:${apiPort}/ws`,
    redisUrl: redis.url,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    dataDir,
    secret,
    redis,
    temporal,
    processes,
    env,
    tokenFor: (user, signOptions = {}, claims = {}) =>
      jwt.sign({ ...claims, sub: user }, secret, { algorithm: 'HS256', expiresIn: 3600, ...signOptions }),
    startComponent,
    async restartRedis() {
      await stack.redis.stop();
      stack.redis = await startRedisServer({ port: redis.port, dir: path.join(dataDir, 'redis') });
      return stack.redis;
    },
    async restartTemporal() {
      await stack.temporal.stop();
      stack.temporal = await startDevServer({ port: temporalPort, uiPort: null, dbFile });
      return stack.temporal;
    },
    async stop() {
      await Promise.all([...processes.values()].map((p) => p.stop(5000)));
      await Promise.all([stack.temporal.stop(), stack.redis.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all((options.components ?? ['worker:orchestrator', 'worker:hpc', 'api']).map((c) => startComponent(c)));
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}
