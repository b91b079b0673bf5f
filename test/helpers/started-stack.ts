import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { PROJECT_ROOT } from '../../common/config.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { freePort } from '../../scripts/lib/wait.js';

/** The whole local stack as `npm start` runs it (scripts/start.ts), on free loopback ports, with its data in a temporary folder. */
export interface StartedStack {
  apiUrl: string;
  temporalAddress: string;
  namespace: string;
  dataDir: string;
  /** The components' TMPDIR, outside the data folder: what lands here was written outside it. */
  tmpDir: string;
  /** start.ts, whose output carries every component's lines, tagged (`worker:hpc | …`). */
  process: ServiceProcess;
  /** Every line start.ts printed. */
  lines: string[];
  tokenFor(user: string): string;
  /** Ctrl-C's path: SIGTERM to start.ts, which stops the components in order; then the data folder goes. */
  stop(): Promise<void>;
}

/**
 * Starts scripts/start.ts the way `npm start` does, with every port it would take fixed (3000, 7233, 8233,
 * 6379, 9464-9466) moved to a free one, so it runs beside anything else on the machine. Works outside
 * vitest (npm run corpus): start.ts finds or provisions its Temporal binary itself.
 */
export async function startNpmStartStack(
  options: { env?: NodeJS.ProcessEnv; temporalCliPath?: string | null } = {},
): Promise<StartedStack> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-npm-start-'));
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-npm-start-tmp-'));
  const ports: Record<string, number> = {};
  for (const name of [
    'API_PORT',
    'TEMPORAL_PORT',
    'TEMPORAL_UI_PORT',
    'REDIS_PORT',
    'API_METRICS_PORT',
    'HPC_METRICS_PORT',
    'ORCHESTRATOR_METRICS_PORT',
  ])
    ports[name] = await freePort();
  const secret = randomBytes(32).toString('hex');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    TMPDIR: tmpDir,
    JWT_SECRET: secret,
    LOG_LEVEL: 'warn',
    NO_COLOR: '1',
  };
  for (const [name, port] of Object.entries(ports)) env[name] = String(port);
  // What points a stack elsewhere (an outer test's Redis or Temporal) must not leak into this one.
  for (const name of ['REDIS_URL', 'REDIS_SENTINELS', 'TEMPORAL_ADDRESS', 'BIND_HOST', 'API_HOST', 'METRICS_HOST', 'NODE_ENV', 'DEV_LOGIN'])
    delete env[name];
  if (options.temporalCliPath) env.TEMPORAL_CLI_PATH = options.temporalCliPath;
  Object.assign(env, options.env);
  const lines: string[] = [];
  const proc = new ServiceProcess('npm start', process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'scripts', 'start.ts')], {
    env,
    cwd: PROJECT_ROOT,
    onLine: (line) => {
      lines.push(line);
      if (process.env.TEST_VERBOSE) console.log(`[npm start] ${line}`);
    },
  });
  const stop = async () => {
    await proc.stop(60_000);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tmpDir, { recursive: true, force: true });
  };
  try {
    await proc.waitForLine(/asset-farm is ready/, 300_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    apiUrl: `http://127.0.0.1:${ports.API_PORT}`,
    temporalAddress: `127.0.0.1:${ports.TEMPORAL_PORT}`,
    namespace: env.TEMPORAL_NAMESPACE ?? 'asset-farm',
    dataDir,
    tmpDir,
    process: proc,
    lines,
    tokenFor: (user) => jwt.sign({ sub: user }, secret, { algorithm: 'HS256', expiresIn: 4 * 3600 }),
    stop,
  };
}
