import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import { waitFor } from '../../scripts/lib/wait.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI process started in the background, for commands that run while the test acts (watch). */
export interface RunningCli {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout has a line matching predicate, or rejects at the deadline. */
  waitForLine(predicate: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  exited: Promise<CliRun>;
}

/** The environment of a CLI run: the caller's variables only, so a developer's own login never leaks in. */
function cliEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ASSET_FARM_')));
  return { ...base, ...env };
}

/** Starts `asset-farm <args>` as a child process, without a TTY, the way CI runs it. */
export function startCli(args: string[], env: Record<string, string | undefined>): RunningCli {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'cli', 'main.ts'), ...args], {
    cwd: PROJECT_ROOT,
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async waitForLine(predicate, what, timeoutMs = 60_000) {
      try {
        return await waitFor(() => stdout.split('\n').find(predicate), { timeoutMs, what });
      } catch (err) {
        throw new Error(`${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      }
    },
    exited,
  };
}

/** Runs `asset-farm <args>` to its end. */
export function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  return startCli(args, env).exited;
}

/** The stdout lines of a run, each parsed as JSON (NDJSON). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
