import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { z } from 'zod';
import { PROJECT_ROOT } from '../../common/config.js';
import { tiedToParent } from '../../scripts/lib/service-process.js';
import { whichSync } from '../../scripts/provision.js';

/**
 * Benchmark helper processes (load generators, socket clients, relays) run as separate Node processes
 * so their CPU never competes inside the process being measured. The runner drives them over the
 * Node IPC channel with small request/response messages.
 */

const Reply = z.object({ id: z.number(), ok: z.boolean(), result: z.unknown().optional(), error: z.string().optional() });
const Request = z.object({ id: z.number(), command: z.string(), args: z.unknown().optional() });

export interface BenchChild {
  name: string;
  child: ChildProcess;
  pid: number;
  tail: string[];
  /** Sends a command and resolves with the child's answer. */
  call<T>(command: string, args?: unknown, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Sockets at 10,000-socket scale go past common soft open-file limits, so every helper starts with
 * its soft limit raised to the hard one. The shell execs node, so the pid (and the IPC channel) stay node's.
 */
export function fileLimitPrefix(): string[] {
  const sh = whichSync('sh');
  return sh ? [sh, '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"'] : [];
}

/**
 * BENCH_CPU_PROF=<dir> makes the processes named in BENCH_CPU_PROF_PROCESSES (default: api,bench-worker)
 * write a V8 CPU profile there when they exit, for finding where a figure's time goes.
 */
function cpuProfileArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return [];
  const names = (process.env.BENCH_CPU_PROF_PROCESSES ?? 'api,bench-worker').split(',');
  // A folder per process, Node's default file names inside: they carry the thread id, and with --import tsx
  // the loader's thread writes a profile too (one shared name would let it overwrite the main thread's).
  return names.includes(name) ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(dir, `${name}-${Date.now()}`)] : [];
}

/**
 * Starts `node --import tsx <script>` with an IPC channel and, where prlimit exists, the open-file
 * limit raised to the hard limit. Lines it prints are kept (last 40) to explain a failure.
 */
export function spawnNode(
  name: string,
  script: string,
  options: { env?: NodeJS.ProcessEnv; args?: string[]; execArgv?: string[]; ipc?: boolean; onLine?: (line: string) => void } = {},
): BenchChild {
  const prefix = fileLimitPrefix();
  const nodeArgs = [
    ...(options.execArgv ?? []),
    ...cpuProfileArgs(name),
    '--import',
    'tsx',
    path.resolve(PROJECT_ROOT, script),
    ...(options.args ?? []),
  ];
  const [executable, ...rest] = prefix.length ? [...prefix, process.execPath, ...nodeArgs] : [process.execPath, ...nodeArgs];
  // Dies with the runner, however the runner ends (`timeout`, Ctrl-C, a crash): nothing is left running.
  const { command, args } = tiedToParent(executable!, rest);
  const child = spawn(command, args, {
    cwd: PROJECT_ROOT,
    env: options.env ?? process.env,
    stdio: options.ipc === false ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    readline.createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      options.onLine?.(line);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (raw) => {
    const reply = Reply.safeParse(raw);
    if (!reply.success) return;
    const waiter = pending.get(reply.data.id);
    pending.delete(reply.data.id);
    if (reply.data.ok) waiter?.resolve(reply.data.result);
    else waiter?.reject(new Error(`${name}: ${reply.data.error ?? 'failed'}`));
  });
  void exited.then(() => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`${name} exited (${child.exitCode ?? child.signalCode}):\n${tail.join('\n')}`));
    pending.clear();
  });
  return {
    name,
    child,
    pid: child.pid!,
    tail,
    call<T>(command: string, args?: unknown, timeoutMs = 600_000): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name} did not answer ${command} within ${timeoutMs / 1000} s:\n${tail.join('\n')}`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        child.send({ id, command, args });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Child side: answers the runner's commands with the given handlers, and exits when the channel closes. */
export function serveCommands(handlers: Record<string, (args: unknown) => unknown>): void {
  process.on('message', (raw) => {
    const request = Request.safeParse(raw);
    if (!request.success) return;
    const { id, command, args } = request.data;
    const handler = handlers[command];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${command}`);
        return handler(args);
      })
      .then(
        (result) => process.send?.({ id, ok: true, result }),
        (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}
