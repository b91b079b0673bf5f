import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { apiSchema, ConfigError, isLoopbackHost, loadConfig, PROJECT_ROOT } from '../common/config.js';
import { buildWebIfStale } from './build-web.js';
import { describeBlender, resolveBlender } from './provision.js';
import { formatLogLine } from './lib/log-format.js';
import { startRedisServer } from './lib/redis-server.js';
import { ServiceProcess, stopAllServices, whenOrphaned } from './lib/service-process.js';
import { startDevServer, waitForPoller } from './lib/temporal-server.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { API_NODE_FLAGS } from '../api/node-flags.js';
import { withHpcProcessEnv } from '../worker/hpc-process-env.js';
import { freePort, isPortOpen, waitFor } from './lib/wait.js';
import { portFromEnv } from './lib/ports.js';

/**
 * `npm start`: the whole local stack in one terminal. Provisions and starts Redis and the Temporal dev
 * server (unless REDIS_URL / TEMPORAL_ADDRESS point elsewhere), then both workers and the API, tags
 * every log line with its process, and on Ctrl-C (SIGINT, SIGTERM or SIGHUP) stops everything in order
 * before it exits. Each child is tied to this process (scripts/lib/service-process.ts): if this process
 * is killed outright, the kernel stops them too.
 *
 * Everything listens on loopback only. `--host <address>` (or BIND_HOST) exposes the app, and only the
 * app: Temporal, Redis and the metrics endpoints stay on 127.0.0.1, and the dev login is off.
 */

const startedAt = performance.now();
const { values: flags } = parseArgs({ options: { host: { type: 'string' } }, allowPositionals: false });
if (existsSync(path.join(PROJECT_ROOT, '.env'))) process.loadEnvFile(path.join(PROJECT_ROOT, '.env'));
const env = process.env;
const DATA_DIR = path.resolve(env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
// Uploads, outputs, Redis and Temporal state are the artists' data: readable by this user only. The
// umask is inherited by every child, so the files Redis, Temporal and the workers create are 0600 too.
process.umask(0o077);
mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
// A folder made before this rule (or by hand) is narrowed too: nothing inside is then reachable by others.
chmodSync(DATA_DIR, 0o700);
const bindHost = flags.host ?? env.BIND_HOST ?? '127.0.0.1';

// A closed terminal (SIGHUP) or a closed pipe must not turn the shutdown's log lines into a crash.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
const useColor = process.stdout.isTTY && !env.NO_COLOR;
const COLORS: Record<string, number> = { redis: 31, temporal: 35, 'worker:hpc': 33, 'worker:orchestrator': 36, api: 32, start: 1 };
function say(tag: string, line: string): void {
  const label = tag.padEnd(19);
  if (process.stdout.writable)
    process.stdout.write(`${useColor ? `\x1b[${COLORS[tag] ?? 0}m${label}\x1b[0m` : label} | ${formatLogLine(line, useColor)}\n`);
}
const seconds = (from: number) => `${((performance.now() - from) / 1000).toFixed(1)} s`;

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

/** Stops every child, in reverse start order (API and workers, then Temporal and Redis), then exits. */
async function shutdown(code: number, why: string): Promise<void> {
  // A terminal's Ctrl-C reaches this process twice (from the terminal and forwarded by npm): one shutdown.
  if (shuttingDown) return;
  shuttingDown = true;
  const from = performance.now();
  say('start', `${why}: stopping asset-farm…`);
  for (const stop of [...stoppers].reverse()) await stop().catch((err: unknown) => say('start', `stop failed: ${String(err)}`));
  // Whatever was still starting when the signal came (it has no stopper yet).
  await stopAllServices();
  say('start', `Everything stopped (${seconds(from)}).`);
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(0, signal));
whenOrphaned(() => void shutdown(1, 'npm is gone'));

/** Reports a process that ended on its own, with its last lines, and stops the stack. */
function supervise(service: ServiceProcess): void {
  void service.exited.then(({ code, signal }) => {
    if (service.isStopping || shuttingDown) return;
    say('start', `${service.name} exited unexpectedly (${signal ?? `code ${code}`}). Its last lines:`);
    for (const line of service.tail) say(service.name, line);
    say('start', 'Stopping the rest of the stack; fix the cause above and run `npm start` again.');
    void shutdown(1, `${service.name} exited`);
  });
}

function startNodeService(
  name: string,
  script: string,
  serviceEnv: NodeJS.ProcessEnv,
  { graceMs = 15_000, nodeFlags = [] }: { graceMs?: number; nodeFlags?: readonly string[] } = {},
): ServiceProcess {
  const service = new ServiceProcess(name, process.execPath, [...nodeFlags, '--import', 'tsx', path.join(PROJECT_ROOT, script)], {
    env: serviceEnv,
    cwd: PROJECT_ROOT,
    onLine: (line) => say(name, line),
  });
  services.push(service);
  stoppers.push(() => service.stop(graceMs));
  supervise(service);
  return service;
}

/** Runs one slow step of the start-up with a line before it and its duration after, so a first start shows where its time goes. */
async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  const from = performance.now();
  say('start', `${what}…`);
  const result = await run();
  say('start', `${what}: done in ${seconds(from)}`);
  return result;
}

try {
  const ports = {
    api: portFromEnv('API_PORT', 3000),
    temporal: portFromEnv('TEMPORAL_PORT', 7233),
    temporalUi: portFromEnv('TEMPORAL_UI_PORT', 8233),
    redis: portFromEnv('REDIS_PORT', 6379),
    // Prometheus endpoints, each on its own loopback port (0 turns one off).
    apiMetrics: portFromEnv('API_METRICS_PORT', 9466),
    orchestratorMetrics: portFromEnv('ORCHESTRATOR_METRICS_PORT', 9465),
    hpcMetrics: portFromEnv('HPC_METRICS_PORT', 9464),
  };
  const exposed = !isLoopbackHost(bindHost);
  // The API's own validation, before anything starts: DEV_LOGIN on an exposed address is refused here.
  const apiEnv: NodeJS.ProcessEnv = {
    ...env,
    DATA_DIR,
    API_PORT: String(ports.api),
    API_HOST: bindHost,
    API_METRICS_PORT: String(ports.apiMetrics),
    JWT_SECRET: env.JWT_SECRET ?? localJwtSecret(),
    // On loopback, the dev login lets a person sign in without an identity provider; exposed, it is off.
    DEV_LOGIN: env.DEV_LOGIN ?? (exposed ? 'false' : 'true'),
  };
  delete apiEnv.METRICS_HOST;
  loadConfig(apiSchema, apiEnv);
  if (exposed)
    say('start', `The app listens on ${bindHost} (--host/BIND_HOST): other machines can reach it. Temporal and Redis stay on loopback.`);

  // The page, built only when web/dist is missing or older than its sources (in this process: no second
  // Node start-up for a check that is usually "fresh").
  await buildWebIfStale((line) => say('start', line));

  // Blender for FBX/OBJ/.blend imports and turntables: installed on the first start like Temporal's
  // binaries; without it the stack still runs glTF jobs (scripts/provision.ts).
  say('start', describeBlender(resolveBlender()));

  // Redis
  let redisUrl = env.REDIS_URL;
  if (env.REDIS_SENTINELS) say('start', `Using Redis through the Sentinels ${env.REDIS_SENTINELS}`);
  else if (!redisUrl) {
    const wanted = ports.redis;
    const port = (await isPortOpen(wanted)) ? await freePort() : wanted;
    if (port !== wanted)
      say('start', `Port ${wanted} is taken; starting Redis on ${port} instead (set REDIS_URL to use an existing Redis).`);
    const redis = await step('Starting Redis', () =>
      startRedisServer({ port, dir: path.join(DATA_DIR, 'redis'), onLine: (l) => say('redis', l) }),
    );
    stoppers.push(() => redis.stop());
    supervise(redis.process);
    redisUrl = redis.url;
    say('start', `Redis ready at ${redisUrl}`);
  } else say('start', `Using Redis at ${redisUrl}`);

  // Temporal
  let temporalAddress = env.TEMPORAL_ADDRESS;
  let uiUrl: string | null = null;
  if (!temporalAddress) {
    for (const p of [ports.temporal, ports.temporalUi]) {
      if (await isPortOpen(p))
        throw new Error(`Port ${p} is in use, probably by another Temporal server. Stop it, or set TEMPORAL_ADDRESS to use it.`);
    }
    const temporal = await step('Starting the Temporal dev server', () =>
      startDevServer({
        port: ports.temporal,
        uiPort: ports.temporalUi,
        dbFile: path.join(DATA_DIR, 'temporal', 'temporal.db'),
        // Every port it opens (gRPC, UI, HTTP, metrics and its internal ones) binds this address: loopback.
        ip: '127.0.0.1',
        onLine: (l) => say('temporal', l),
      }),
    );
    say('start', `Temporal: ${temporal.binary.describe}`);
    stoppers.push(() => temporal.stop());
    if (temporal.process) supervise(temporal.process);
    temporalAddress = temporal.address;
    uiUrl = temporal.uiUrl;
  } else say('start', `Using Temporal at ${temporalAddress}`);

  if (await isPortOpen(ports.api)) throw new Error(`Port ${ports.api} is in use. Stop what is using it or set API_PORT.`);
  const metricsVariables = {
    apiMetrics: 'API_METRICS_PORT',
    orchestratorMetrics: 'ORCHESTRATOR_METRICS_PORT',
    hpcMetrics: 'HPC_METRICS_PORT',
  } as const;
  for (const [key, variable] of Object.entries(metricsVariables)) {
    const port = ports[key as keyof typeof metricsVariables];
    if (port && (await isPortOpen(port))) throw new Error(`Port ${port} (${variable}) is in use; set ${variable} to another port or 0.`);
  }
  const serviceEnv: NodeJS.ProcessEnv = { ...apiEnv, ...(redisUrl ? { REDIS_URL: redisUrl } : {}), TEMPORAL_ADDRESS: temporalAddress };
  // A local Ctrl-C should not wait half a minute for a compute step: 5 s to finish, then it is cancelled
  // (and retried from its checkpoint on the next start).
  const hpcGraceSeconds = Number(env.HPC_SHUTDOWN_GRACE_SECONDS ?? 5);
  const workersReady = performance.now();
  say('start', 'Starting the workers and the API…');
  const orchestrator = startNodeService('worker:orchestrator', 'worker/orchestrator.ts', {
    ...serviceEnv,
    METRICS_PORT: String(ports.orchestratorMetrics),
  });
  const hpc = startNodeService(
    'worker:hpc',
    'worker/hpc.ts',
    withHpcProcessEnv({ ...serviceEnv, METRICS_PORT: String(ports.hpcMetrics), HPC_SHUTDOWN_GRACE_SECONDS: String(hpcGraceSeconds) }),
    { graceMs: (hpcGraceSeconds + 10) * 1000 },
  );
  startNodeService('api', 'api/main.ts', serviceEnv, { nodeFlags: API_NODE_FLAGS });

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
  await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.api}/readyz`)).ok, { timeoutMs: 120_000, what: 'the API to be ready' });
  say('start', `Workers and API ready in ${seconds(workersReady)}`);
  // A wildcard address is where it listens, not where a browser goes: show localhost for it.
  const appHost = exposed && !['0.0.0.0', '::', '[::]'].includes(bindHost) ? bindHost : 'localhost';
  say('start', '');
  say('start', `App:          http://${appHost}:${ports.api}`);
  if (uiUrl) say('start', `Temporal UI:  ${uiUrl}/namespaces/${namespace}/workflows`);
  say('start', `Health:       http://${appHost}:${ports.api}/healthz`);
  const metricsLines = [
    ports.apiMetrics && `API :${ports.apiMetrics}`,
    ports.hpcMetrics && `HPC worker :${ports.hpcMetrics}`,
    ports.orchestratorMetrics && `orchestrator worker :${ports.orchestratorMetrics}`,
  ].filter(Boolean);
  if (metricsLines.length) say('start', `Metrics:      ${metricsLines.join(', ')} (/metrics on 127.0.0.1)`);
  say('start', `asset-farm is ready (started in ${seconds(startedAt)}). Press Ctrl-C to stop everything.`);
} catch (err) {
  say('start', `Could not start asset-farm: ${(err as Error).message}`);
  await shutdown(err instanceof ConfigError ? 78 : 1, 'start-up failed');
}
