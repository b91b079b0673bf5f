import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { tiedToParent } from '../../common/process-tie.js';

export { tiedToParent };

/** Every ServiceProcess of this process that has not exited yet, so a shutdown can reach those still starting. */
const live = new Set<ServiceProcess>();

/** Stops every ServiceProcess still running (in parallel), e.g. one whose start was interrupted by Ctrl-C. */
export async function stopAllServices(graceMs = 10_000): Promise<void> {
  await Promise.all([...live].map((service) => service.stop(graceMs)));
}

/** How many of a process's last log lines are kept to explain a crash. */
const TAIL_LINES = 30;
const HEAD_LINES = 10;

/** A child process started by the stack: its output tagged line by line, its last lines kept, stoppable as a group. */
export class ServiceProcess {
  readonly child: ChildProcess;
  readonly tail: string[] = [];
  /** First lines of output: where a crash usually says why (a panic's message precedes its long trace). */
  readonly head: string[] = [];
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stopping = false;
  private readonly lineWaiters: { pattern: RegExp; resolve: () => void }[] = [];

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: (line: string) => void } = {},
  ) {
    const tied = tiedToParent(command, args);
    this.child = spawn(tied.command, tied.args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stop() reaches grandchildren too.
      detached: true,
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (line) => {
        if (this.head.length < HEAD_LINES) this.head.push(line);
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
        options.onLine?.(line);
        for (const waiter of [...this.lineWaiters]) {
          if (waiter.pattern.test(line)) {
            this.lineWaiters.splice(this.lineWaiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      });
    }
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (err) => {
        this.tail.push(`failed to start ${command}: ${err.message}`);
        resolve({ code: 127, signal: null });
      });
    });
    void this.exited.then(() => live.delete(this));
  }

  /** Resolves when the process prints a line matching `pattern`; rejects if it exits first or the time runs out. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not print ${pattern} within ${timeoutMs / 1000} s:\n${this.tail.join('\n')}`)),
        timeoutMs,
      );
      this.lineWaiters.push({
        pattern,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${signal ?? `code ${code}`}) before it was ready:\n${this.tail.join('\n')}`));
      });
    });
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** SIGTERM to the whole group, then SIGKILL after `graceMs` if it is still running. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) return;
    const pid = this.child.pid;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Anything the leader left behind in its group goes too.
    signal('SIGKILL');
  }
}

/**
 * Calls `onOrphaned` once this process's parent has gone (it is re-parented: `npm` or the shell that
 * ran it was killed without passing the signal on), so a stack's supervisor stops what it started
 * instead of running on unwatched. Checked every second; the timer does not keep the process alive.
 */
export function whenOrphaned(onOrphaned: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, 1000);
  timer.unref();
}
