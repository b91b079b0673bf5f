import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { waitFor } from './wait.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers signal 0; it holds nothing, so it counts as gone.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A supervisor (a Node process) that starts `count` services through ServiceProcess and prints their pids. */
function startSupervisor(count: number) {
  const source = `
    import { ServiceProcess } from ${JSON.stringify(path.join(PROJECT_ROOT, 'scripts/lib/service-process.ts'))};
    const services = Array.from({ length: ${count} }, (_, i) => new ServiceProcess('sleeper-' + i, 'sleep', ['600']));
    console.log('pids ' + services.map((s) => s.child.pid).join(','));
    setInterval(() => {}, 1000);
  `;
  const supervisor = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pids = new Promise<number[]>((resolve) =>
    readline.createInterface({ input: supervisor.stdout }).on('line', (line) => {
      if (line.startsWith('pids ')) resolve(line.slice(5).split(',').map(Number));
    }),
  );
  return { supervisor, pids };
}

describe.runIf(process.platform === 'linux')('a service started through ServiceProcess', () => {
  it.each(['SIGKILL', 'SIGTERM', 'SIGSEGV'] as const)('dies with its supervisor when the supervisor ends by %s', async (signal) => {
    const { supervisor, pids } = startSupervisor(3);
    const children = await pids;
    expect(children).toHaveLength(3);
    for (const pid of children) expect(alive(pid)).toBe(true);
    // setpriv sets the parent-death signal and then execs the service: wait for the exec. (A supervisor
    // killed in the microseconds before that would leave the child untied; it cannot happen once running.)
    await waitFor(() => children.every((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep\0')), {
      timeoutMs: 30_000,
      what: 'the services to be running',
    });
    // Each service is in its own process group (so a terminal's Ctrl-C does not reach it): only the
    // kernel's parent-death signal can stop it once the supervisor is gone.
    supervisor.kill(signal);
    await waitFor(() => children.every((pid) => !alive(pid)), { timeoutMs: 30_000, what: 'the services to die with their supervisor' });
  });
});
