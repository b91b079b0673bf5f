import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { API_NODE_FLAGS } from '../../api/node-flags.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { freePort, isPortOpen, waitFor } from '../../scripts/lib/wait.js';

/**
 * `npm start` as a person runs it: in a pseudo-terminal (util-linux `script`), through npm, stopped with
 * Ctrl-C typed into the terminal, which the terminal turns into SIGINT for the whole foreground process
 * group (npm, its shell, start.ts), not a signal to start.ts alone.
 */

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

/** Pids listening on any of these TCP ports (redis-server rewrites its environment block, so it is found by its port). */
function processesOnPorts(ports: number[]): number[] {
  const all = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
  return [
    ...new Set(
      listeningSockets(all)
        .filter((s) => ports.includes(s.port))
        .map((s) => s.pid),
    ),
  ];
}

/** Everything of one stack: by its DATA_DIR, and by the ports it was given. */
function stackProcesses(dataDir: string, ports: number[]): number[] {
  return [...new Set([...processesWithDataDir(dataDir), ...processesOnPorts(ports)])];
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}

interface ListeningSocket {
  pid: number;
  address: string;
  port: number;
  loopback: boolean;
}

/** An address from /proc/net/tcp{,6}: hex, each 32-bit word in host (little-endian) byte order. */
function decodeAddress(hex: string): { address: string; loopback: boolean } {
  const words = hex.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
  if (words.length === 1) {
    const bytes = words[0]!.match(/../g)!.map((b) => parseInt(b, 16));
    return { address: bytes.join('.'), loopback: bytes[0] === 127 };
  }
  const full = words.join('');
  const mapped = /^0{20}ffff([0-9a-f]{8})$/i.exec(full);
  if (mapped) {
    const bytes = mapped[1]!.match(/../g)!.map((b) => parseInt(b, 16));
    return { address: `::ffff:${bytes.join('.')}`, loopback: bytes[0] === 127 };
  }
  return { address: full.match(/.{4}/g)!.join(':'), loopback: /^0{31}1$/.test(full) };
}

/** What `ss -ltnp` shows for these pids, read from /proc: every TCP socket they listen on. */
function listeningSockets(pids: number[]): ListeningSocket[] {
  const listening = new Map<string, { address: string; port: number; loopback: boolean }>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A = LISTEN
      const [hexAddress, hexPort] = fields[1]!.split(':');
      listening.set(fields[9]!, { ...decodeAddress(hexAddress!), port: parseInt(hexPort!, 16) });
    }
  }
  const sockets: ListeningSocket[] = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const socket = inode ? listening.get(inode) : undefined;
      if (socket) sockets.push({ pid, ...socket });
    }
  }
  return sockets;
}

/** `npm start` in a pseudo-terminal; `ctrlC()` types Ctrl-C into it. */
class TerminalSession {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(env: NodeJS.ProcessEnv, args: string[] = []) {
    // -e: script exits with npm's code; -f: output as it comes; the transcript goes nowhere.
    this.child = spawn('script', ['-qefc', ['npm', 'start', ...(args.length ? ['--', ...args] : [])].join(' '), '/dev/null'], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout!, this.child.stderr!])
      readline.createInterface({ input: stream }).on('line', (l) => this.lines.push(l.replace(/\r$/, '')));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get output(): string {
    return this.lines.join('\n');
  }

  waitForLine(text: string, timeoutMs = 150_000): Promise<true> {
    return waitFor(() => this.lines.some((l) => l.includes(text)), { timeoutMs, what: `"${text}"; output so far:\n${this.output}` });
  }

  /** What the terminal's line discipline turns into SIGINT for the foreground process group. */
  ctrlC(): void {
    this.child.stdin!.write('\x03');
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

describe('npm start in a terminal', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-start-'));
  const sessions: TerminalSession[] = [];
  const allPorts: number[] = [];
  afterAll(() => {
    for (const session of sessions) session.kill();
    for (const pid of processesWithDataDir(dataDir)) process.kill(pid, 'SIGKILL');
    for (const pid of processesOnPorts(allPorts)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function stackEnv() {
    const ports = {
      API_PORT: await freePort(),
      TEMPORAL_PORT: await freePort(),
      TEMPORAL_UI_PORT: await freePort(),
      REDIS_PORT: await freePort(),
      API_METRICS_PORT: await freePort(),
      HPC_METRICS_PORT: await freePort(),
      ORCHESTRATOR_METRICS_PORT: await freePort(),
    };
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'info', NO_COLOR: '1' };
    for (const [name, port] of Object.entries(ports)) env[name] = String(port);
    for (const name of ['REDIS_URL', 'TEMPORAL_ADDRESS', 'BIND_HOST', 'API_HOST', 'DEV_LOGIN', 'METRICS_HOST', 'NODE_ENV'])
      delete env[name];
    const cli = inject('temporalCliPath');
    if (cli) env.TEMPORAL_CLI_PATH = cli;
    allPorts.push(...Object.values(ports));
    return { env, ports: Object.values(ports) };
  }

  it('listens on loopback only, stops everything on Ctrl-C or SIGTERM to npm, starts again, and leaves nothing if killed', async () => {
    const first = await stackEnv();
    const run1 = new TerminalSession(first.env);
    sessions.push(run1);
    await run1.waitForLine('asset-farm is ready');
    const pids = stackProcesses(dataDir, first.ports);
    // start.ts, Redis, Temporal, two workers and the API (and the tools they run).
    expect(pids.length).toBeGreaterThanOrEqual(6);
    // The API runs with its node flags (api/node-flags.ts), right after node itself.
    const api = pids.map(commandOf).filter((c) => c.endsWith('api/main.ts'));
    expect(api).toHaveLength(1);
    expect(api[0]!.split(' ').slice(1, 1 + API_NODE_FLAGS.length)).toEqual(API_NODE_FLAGS);
    const sockets = listeningSockets(pids);
    // Every port the stack opens, including the ones the Temporal dev server picks itself.
    expect(sockets.filter((s) => !s.loopback).map((s) => `${s.address}:${s.port} (${commandOf(s.pid)})`)).toEqual([]);
    for (const port of first.ports) expect(sockets.map((s) => s.port)).toContain(port);
    expect(sockets.length).toBeGreaterThan(first.ports.length);
    // Artists' data is this user's only.
    expect(statSync(dataDir).mode & 0o077).toBe(0);
    expect(statSync(path.join(dataDir, 'redis')).mode & 0o077).toBe(0);
    // One short line per request at INFO: no headers, and a token in the query string never reaches it.
    const secret = `tok${Math.random().toString(36).slice(2)}`;
    expect((await fetch(`http://127.0.0.1:${first.env.API_PORT}/api/jobs?token=${secret}`)).status).toBe(401);
    await run1.waitForLine('GET /api/jobs 401');
    const requestLine = run1.lines.find((l) => l.includes('GET /api/jobs 401'))!;
    expect(requestLine).not.toContain(secret);
    expect(requestLine).not.toMatch(/user-agent|headers/i);

    run1.ctrlC();
    // npm ends as interrupted (128 + SIGINT) once start.ts has exited cleanly.
    expect([0, 130]).toContain(await run1.exited);
    expect(run1.output).toContain('Everything stopped');
    expect(stackProcesses(dataDir, first.ports).map(commandOf)).toEqual([]);
    for (const port of first.ports) expect(await isPortOpen(port)).toBe(false);

    // The same ports and data folder again: nothing of the first run is in the way.
    const run2 = new TerminalSession(first.env);
    sessions.push(run2);
    await run2.waitForLine('asset-farm is ready');
    expect(run2.output).not.toContain('is taken');
    // SIGTERM to npm alone (as a process manager might send it): npm passes it to its shell, which dies of
    // it without passing it on. start.ts is then orphaned (and, as npm was the terminal's command, the
    // terminal closes: SIGHUP); either way it stops the stack in order.
    const npm = processesWithDataDir(dataDir).find((pid) => commandOf(pid).startsWith('npm'));
    expect(npm).toBeDefined();
    process.kill(npm!, 'SIGTERM');
    await waitFor(() => stackProcesses(dataDir, first.ports).length === 0, { timeoutMs: 60_000, what: 'the stack to stop' }).catch(
      (err: Error) => {
        throw new Error(`${err.message}; still running: ${stackProcesses(dataDir, first.ports).map(commandOf).join('; ')}`);
      },
    );
    run2.kill();

    const run3 = new TerminalSession(first.env);
    sessions.push(run3);
    await run3.waitForLine('asset-farm is ready');
    // start.ts killed outright cannot stop anything itself: each child dies with it.
    const start = processesWithDataDir(dataDir).find((pid) => commandOf(pid).includes('scripts/start.ts'));
    expect(start).toBeDefined();
    process.kill(start!, 'SIGKILL');
    await waitFor(() => stackProcesses(dataDir, first.ports).length === 0, {
      timeoutMs: 60_000,
      what: 'the stack to die with start.ts',
    }).catch((err: Error) => {
      throw new Error(`${err.message}; still running: ${stackProcesses(dataDir, first.ports).map(commandOf).join('; ')}`);
    });
    for (const port of first.ports) expect(await isPortOpen(port)).toBe(false);
    run3.kill();
    // Three cold starts while the rest of the suite loads both cores: longer than the default test
    // timeout, which would end the test before a slow start's own wait can say how far it got.
  }, 600_000);

  it('refuses the dev login on an exposed address before starting anything', async () => {
    const { env } = await stackEnv();
    for (const [host, devLogin] of [
      ['0.0.0.0', 'true'],
      ['192.168.7.21', 'yes'],
    ] as const) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'scripts/start.ts'), '--host', host], {
        cwd: PROJECT_ROOT,
        env: { ...env, DEV_LOGIN: devLogin },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: string[] = [];
      for (const stream of [child.stdout, child.stderr]) readline.createInterface({ input: stream }).on('line', (l) => out.push(l));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, out.join('\n')).toBe(78);
      expect(out.join('\n')).toMatch(new RegExp(`DEV_LOGIN.*API_HOST=${host.replaceAll('.', '\\.')}`));
      expect(out.join('\n')).not.toContain('Starting Redis');
    }
  });
});
