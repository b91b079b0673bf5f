import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../common/config.js';
import { ServiceProcess } from '../scripts/lib/service-process.js';
import { freePort, isPortOpen } from '../scripts/lib/wait.js';
import { startStack, type TestStack } from '../test/helpers/stack.js';

/** Each worker ends on SIGTERM by itself, with code 0, in order: it is never left for a SIGKILL. */
describe('worker processes on SIGTERM', () => {
  let stack: TestStack;
  let hpcMetricsPort: number;
  let orchestratorMetricsPort: number;
  beforeAll(async () => {
    [hpcMetricsPort, orchestratorMetricsPort] = [await freePort(), await freePort()];
    stack = await startStack({
      components: ['worker:orchestrator', 'worker:hpc'],
      componentEnv: {
        'worker:hpc': { METRICS_PORT: String(hpcMetricsPort), LOG_LEVEL: 'info' },
        'worker:orchestrator': { METRICS_PORT: String(orchestratorMetricsPort), LOG_LEVEL: 'info' },
      },
      onLine: () => {},
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    ['worker:hpc', () => hpcMetricsPort],
    ['worker:orchestrator', () => orchestratorMetricsPort],
  ] as const)('%s stops polling, closes its connections and metrics endpoint, and exits 0', async (name, metricsPort) => {
    const proc = stack.processes.get(name)!;
    expect(await isPortOpen(metricsPort())).toBe(true);
    // To the process alone, as Docker or systemd sends it; nothing here sends a SIGKILL.
    process.kill(proc.child.pid!, 'SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    const lines = proc.tail.join('\n');
    expect(lines).toContain('"state":"STOPPED"');
    expect(lines.indexOf('"state":"STOPPED"')).toBeLessThan(lines.indexOf('Worker stopped'));
    expect(await isPortOpen(metricsPort())).toBe(false);
  });

  it('exits at once on SIGTERM while it is still waiting for Temporal', async () => {
    const closed = await freePort();
    const worker = new ServiceProcess('worker:hpc', process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker/hpc.ts')], {
      env: { ...stack.env, TEMPORAL_ADDRESS: `127.0.0.1:${closed}`, LOG_LEVEL: 'info', METRICS_PORT: '0' },
      cwd: PROJECT_ROOT,
    });
    try {
      // It retries for two minutes before giving up; the signal must not wait for that.
      await worker.waitForLine(/Waiting for Temporal/, 60_000);
      process.kill(worker.child.pid!, 'SIGTERM');
      expect(await worker.exited).toEqual({ code: 0, signal: null });
      expect(worker.tail.join('\n')).toContain('Stopping before start');
    } finally {
      await worker.stop();
    }
  });
});
