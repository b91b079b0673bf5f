import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { formatLogLine } from './lib/log-format.js';
import { startRedisServer } from './lib/redis-server.js';
import { ServiceProcess } from './lib/service-process.js';
import { startDevServer, waitForPoller } from './lib/temporal-server.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { freePort, isPortOpen, waitFor } from './lib/wait.js';

/**
 * `npm start`: the whole local stack in one terminal. Provisions and starts Redis and the Temporal dev
 * server (unless REDIS_URL / TEMPORAL_ADDRESS point elsewhere), then both workers and the API, tags
 * every log line with its process, and on Ctrl-C stops everything, leaving nothing running.
 */

if (existsSync(path.join(PROJECT_ROOT, '.env'))) process.loadEnvFile(path.join(PROJECT_ROOT, '.env'));
const env = process.env;
const DATA_DIR = path.resolve(env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
mkdirSync(DATA_DIR, { recursive: true });

const useColor = process.stdout.isTTY && !env.NO_COLOR;
const COLORS: Record<string, number> = { redis: 31, temporal: 35, 'worker:hpc': 33, 'worker:orchestrator': 36, api: 32, start: 1 };
function say(tag: string, line: string): void {
  const label = tag.padEnd(19);
  process.stdout.write(`${useColor ? `\x1b[${COLORS[tag] ?? 0}m${label}\x1b[0m` : label} | ${formatLogLine(line)}\n`);
}

/** A stable local JWT secret, so tokens survive restarts of the local stack. Kept in the git-ignored data folder. */
function localJwtSecret(): string {
  const file = path.join(DATA_DIR, 'dev-jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}

const services: ServiceProcess[] = [];
const stoppers: (() => Promise<void>)[] = [];
let shuttingDown = false;

async function shutdown(code: number): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    say('start', 'Stopping asset-farm…');
    // Reverse start order: API and workers first, then Temporal and Redis.
    for (const stop of [...stoppers].reverse()) await stop().catch((err: unknown) => say('start', `stop failed: ${String(err)}`));
    say('start', 'Everything stopped.');
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGHUP', () => void shutdown(0));

/** Reports a process that ended on its own, with its last lines, and stops the stack. */
function supervise(service: ServiceProcess): void {
  void service.exited.then(({ code, signal }) => {
    if (service.isStopping || shuttingDown) return;
    say('start', `${service.name} exited unexpectedly (${signal ?? `code ${code}`}). Its last lines:`);
    for (const line of service.tail) say(service.name, line);
    say('start', 'Stopping the rest of the stack; fix the cause above and run `npm start` again.');
    void shutdown(1);
  });
}

function startNodeService(name: string, script: string, serviceEnv: NodeJS.ProcessEnv): ServiceProcess {
  const service = new ServiceProcess(name, process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, script)], {
    env: serviceEnv,
    cwd: PROJECT_ROOT,
    onLine: (line) => say(name, line),
  });
  services.push(service);
  stoppers.push(() => service.stop(15_000));
  supervise(service);
  return service;
}

try {
  // Redis
  let redisUrl = env.REDIS_URL;
  if (!redisUrl) {
    const wanted = Number(env.REDIS_PORT ?? 6379);
    const port = (await isPortOpen(wanted)) ? await freePort() : wanted;
    if (port !== wanted)
      say('start', `Port ${wanted} is taken; starting Redis on ${port} instead (set REDIS_URL to use an existing Redis).`);
    const redis = await startRedisServer({ port, dir: path.join(DATA_DIR, 'redis'), onLine: (l) => say('redis', l) });
    stoppers.push(() => redis.stop());
    supervise(redis.process);
    redisUrl = redis.url;
    say('start', `Redis ready at ${redisUrl}`);
  } else say('start', `Using Redis at ${redisUrl}`);

  // Temporal
  let temporalAddress = env.TEMPORAL_ADDRESS;
  let uiUrl: string | null = null;
  if (!temporalAddress) {
    const port = Number(env.TEMPORAL_PORT ?? 7233);
    const uiPort = Number(env.TEMPORAL_UI_PORT ?? 8233);
    for (const p of [port, uiPort]) {
      if (await isPortOpen(p))
        throw new Error(`Port ${p} is in use, probably by another Temporal server. Stop it, or set TEMPORAL_ADDRESS to use it.`);
    }
    say('start', 'Starting the Temporal dev server…');
    const temporal = await startDevServer({
      port,
      uiPort,
      dbFile: path.join(DATA_DIR, 'temporal', 'temporal.db'),
      ip: '0.0.0.0',
      onLine: (l) => say('temporal', l),
    });
    say('start', `Temporal: ${temporal.binary.describe}`);
    stoppers.push(() => temporal.stop());
    if (temporal.process) supervise(temporal.process);
    temporalAddress = `127.0.0.1:${port}`;
    uiUrl = temporal.uiUrl;
  } else say('start', `Using Temporal at ${temporalAddress}`);

  const apiPort = Number(env.API_PORT ?? 3000);
  if (await isPortOpen(apiPort)) throw new Error(`Port ${apiPort} is in use. Stop what is using it or set API_PORT.`);
  const serviceEnv: NodeJS.ProcessEnv = {
    ...env,
    REDIS_URL: redisUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    DATA_DIR,
    API_PORT: String(apiPort),
    JWT_SECRET: env.JWT_SECRET ?? localJwtSecret(),
    DEV_LOGIN: env.DEV_LOGIN ?? 'true',
  };
  // Prometheus endpoints of the workers (the API serves its own at /metrics); 0 turns one off.
  const metricsPorts = { orchestrator: Number(env.ORCHESTRATOR_METRICS_PORT ?? 9465), hpc: Number(env.HPC_METRICS_PORT ?? 9464) };
  for (const [name, port] of Object.entries(metricsPorts)) {
    if (port && (await isPortOpen(port)))
      throw new Error(`Port ${port} (${name} worker metrics) is in use; set ${name.toUpperCase()}_METRICS_PORT to another port or 0.`);
  }
  const orchestrator = startNodeService('worker:orchestrator', 'worker/orchestrator.ts', {
    ...serviceEnv,
    METRICS_PORT: String(metricsPorts.orchestrator),
  });
  const hpc = startNodeService('worker:hpc', 'worker/hpc.ts', { ...serviceEnv, METRICS_PORT: String(metricsPorts.hpc) });
  startNodeService('api', 'api/main.ts', serviceEnv);

  const namespace = env.TEMPORAL_NAMESPACE ?? 'asset-farm';
  const pollerOf = (proc: ServiceProcess, taskQueue: string, kind: 'workflow' | 'activity') =>
    waitForPoller({
      address: temporalAddress,
      namespace,
      taskQueue,
      kind,
      pid: proc.child.pid!,
      timeoutMs: 180_000,
      isAlive: () => proc.child.exitCode === null,
    });
  await Promise.all([
    pollerOf(orchestrator, ORCHESTRATOR_TASK_QUEUE, 'workflow'),
    pollerOf(hpc, env.HPC_TASK_QUEUE ?? HPC_TASK_QUEUE, 'activity'),
  ]);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok, { timeoutMs: 120_000, what: 'the API to be ready' });
  say('start', '');
  say('start', `App:          http://localhost:${apiPort}`);
  if (uiUrl) say('start', `Temporal UI:  ${uiUrl}/namespaces/${namespace}/workflows`);
  say('start', `Health:       http://localhost:${apiPort}/healthz`);
  if (metricsPorts.hpc || metricsPorts.orchestrator)
    say('start', `Metrics:      HPC worker :${metricsPorts.hpc}/metrics, orchestrator worker :${metricsPorts.orchestrator}/metrics`);
  say('start', 'asset-farm is ready. Press Ctrl-C to stop everything.');
} catch (err) {
  say('start', `Could not start asset-farm: ${(err as Error).message}`);
  await shutdown(1);
}
