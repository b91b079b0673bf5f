import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { isExecutable, tiedToParent, whichSync } from '../../common/process-tie.js';

/** Progress a tool's output line maps to; null for lines that say nothing about progress. */
export interface ToolProgress {
  done: number;
  total: number;
  message: string;
}

/** Turns one line of a tool's output into progress. One parser per tool (see gltfpack-parser.ts). */
export type OutputParser = (line: string, stream: 'stdout' | 'stderr') => ToolProgress | null;

export interface RunToolOptions {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  parser?: OutputParser;
  onProgress?: (progress: ToolProgress) => void;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** The tool's process id once it runs, and again when it has exited (for a caller that may be killed first). */
  onSpawn?: (pid: number) => void;
  onExit?: (pid: number) => void;
  /** Aborting kills the tool's whole process tree (SIGTERM, then SIGKILL after killGraceMs). */
  signal?: AbortSignal;
  killGraceMs?: number;
}

export interface ToolResult {
  exitCode: number;
  /** Last lines of output, for reports and error messages. */
  tail: string[];
  /** Last lines of standard error alone. */
  stderrTail: string[];
}

/** The tool ran but failed; the message carries its exit code and last lines. */
export class ExternalToolError extends Error {
  readonly code = 'EXTERNAL_TOOL_FAILED';
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly tail: string[],
    reason: string,
    /** Last lines of standard error alone. */
    readonly stderrTail: string[] = [],
  ) {
    super(`${command} ${reason}${tail.length ? `; last output:\n${tail.join('\n')}` : ''}`);
    this.name = 'ExternalToolError';
  }
}

/** The run was cancelled through its AbortSignal and the process tree is gone. */
export class ExternalToolCancelled extends Error {
  readonly code = 'EXTERNAL_TOOL_CANCELLED';
  constructor(readonly command: string) {
    super(`${command} was cancelled`);
    this.name = 'ExternalToolCancelled';
  }
}

const TAIL_LINES = 20;

/**
 * Runs an external program as a step of an activity (gltfpack, a studio's Blender script…): streams its
 * output line by line through a pluggable parser into progress, and on abort kills its whole process
 * group, so a cancelled job leaves no CPU burning behind it.
 */
export function runExternalTool(options: RunToolOptions): Promise<ToolResult> {
  const { command, args, signal, killGraceMs = 2000 } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ExternalToolCancelled(command));
      return;
    }
    // Its own process group, so a kill reaches everything the tool starts.
    // The wrapper below would turn a missing program into its own exit code: say so plainly first.
    if (!(command.includes('/') ? isExecutable(command) : whichSync(command))) {
      reject(new ExternalToolError(command, null, [], 'could not be started (not found); check it is installed and on PATH'));
      return;
    }
    // Tied to the spawning thread too: a stage thread terminated before it reported this pid leaves no encoder running.
    const tied = tiedToParent(command, args);
    const child = spawn(tied.command, tied.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    const tail: string[] = [];
    const stderrTail: string[] = [];
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;

    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const onAbort = () => {
      cancelled = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const watch = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
      if (!stream) return;
      readline.createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        if (name === 'stderr') {
          stderrTail.push(line);
          if (stderrTail.length > TAIL_LINES) stderrTail.shift();
        }
        options.onLine?.(line, name);
        const progress = options.parser?.(line, name);
        if (progress) options.onProgress?.(progress);
      });
    };
    watch(child.stdout, 'stdout');
    watch(child.stderr, 'stderr');

    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new ExternalToolError(command, null, tail, `could not be started (${err.message}); check it is installed and on PATH`, stderrTail),
      );
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
      // Make sure nothing the tool started outlives it.
      killGroup('SIGKILL');
      if (child.pid !== undefined) options.onExit?.(child.pid);
      if (cancelled) reject(new ExternalToolCancelled(command));
      else if (code === 0) resolve({ exitCode: 0, tail, stderrTail });
      else reject(new ExternalToolError(command, code, tail, sig ? `was killed by ${sig}` : `exited with code ${code}`, stderrTail));
    });
  });
}
