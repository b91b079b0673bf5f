import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { freePort, isPortOpen, waitFor } from '../../scripts/lib/wait.js';

/** Pids of live processes whose environment carries this exact DATA_DIR: everything `npm start` launched. */
function processesWithDataDir(dataDir: string): number[] {
  const needle = `DATA_DIR=${dataDir}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked, or is not ours to read.
    }
  }
  return pids;
}

describe('npm start', () => {
  it('brings up the whole stack with a ready line and leaves nothing running after Ctrl-C', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-start-'));
    const [apiPort, temporalPort, uiPort, redisPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: dataDir,
      API_PORT: String(apiPort),
      TEMPORAL_PORT: String(temporalPort),
      TEMPORAL_UI_PORT: String(uiPort),
      REDIS_PORT: String(redisPort),
      HPC_METRICS_PORT: '0',
      ORCHESTRATOR_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      NO_COLOR: '1',
    };
    delete env.REDIS_URL;
    delete env.TEMPORAL_ADDRESS;
    const cli = inject('temporalCliPath');
    if (cli) env.TEMPORAL_CLI_PATH = cli;
    const start = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'scripts/start.ts')], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    readline.createInterface({ input: start.stdout }).on('line', (l) => lines.push(l));
    readline.createInterface({ input: start.stderr }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => lines.some((l) => l.includes('asset-farm is ready')), {
        timeoutMs: 150_000,
        what: `the ready line; output so far:\n${lines.join('\n')}`,
      });
      expect(lines.join('\n')).toContain(`App:          http://localhost:${apiPort}`);
      expect(lines.join('\n')).toContain(`Temporal UI:  http://localhost:${uiPort}/namespaces/asset-farm/workflows`);
      // Each process's lines are tagged with its name.
      expect(lines.some((l) => l.startsWith('temporal            | '))).toBe(true);
      expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${uiPort}/`)).status).toBe(200);
      expect(processesWithDataDir(dataDir).length).toBeGreaterThanOrEqual(3);

      start.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(lines.join('\n')).toContain('Everything stopped.');
      expect(processesWithDataDir(dataDir)).toEqual([]);
      for (const port of [apiPort, temporalPort, uiPort, redisPort]) expect(await isPortOpen(port)).toBe(false);
    } finally {
      if (start.exitCode === null) start.kill('SIGKILL');
      for (const pid of processesWithDataDir(dataDir)) process.kill(pid, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
