import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const SETPRIV = '/usr/bin/setpriv';
let setprivUsable: boolean | undefined;

/** True when `file` exists and may be executed by this process. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Looks a command up on PATH without spawning a shell. */
export function whichSync(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/**
 * The command line that runs `command` so that it dies with what spawned it: on Linux, util-linux's
 * `setpriv --pdeathsig SIGTERM` sets the kernel's parent-death signal and execs the command (same pid), so
 * even a SIGKILLed parent leaves no orphan holding ports or CPU. The signal follows the spawning *thread*:
 * a tool started inside a stage's worker thread dies when that thread is terminated, even if the thread
 * never got to report the tool's pid. Where setpriv is missing (macOS) the command runs as given, and only
 * the parent's own shutdown stops it. Every child of `npm start`, the tests' stacks, the benchmarks and the
 * HPC worker's external tools goes through here.
 */
export function tiedToParent(command: string, args: string[]): { command: string; args: string[] } {
  setprivUsable ??= process.platform === 'linux' && isExecutable(SETPRIV);
  return setprivUsable ? { command: SETPRIV, args: ['--pdeathsig', 'SIGTERM', '--', command, ...args] } : { command, args };
}
