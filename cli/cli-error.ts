/** Exit codes of `asset-farm`, stable for scripts and CI (README "CLI"). */
export const EXIT = {
  /** The command did what was asked; for watch, the job completed. */
  OK: 0,
  /** The job failed, was cancelled or terminated, or the server refused the operation. */
  JOB_FAILED: 1,
  /** Bad command line or arguments the server rejected as invalid (including an unknown job id). */
  USAGE: 2,
  /** Not signed in, or the token was refused or has expired. */
  AUTH: 3,
  /** The API could not be reached (connection refused, DNS, timeout, 502/503/504). */
  UNREACHABLE: 4,
  /** Stopped with Ctrl-C (the shell's convention, 128 + SIGINT); the job itself goes on. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Stable codes of the errors the CLI reports, each with the exit code it ends the process with. */
export type CliErrorCode =
  | 'NOT_SIGNED_IN'
  | 'AUTH_REFUSED'
  | 'API_UNREACHABLE'
  | 'BAD_ARGUMENT'
  | 'JOB_NOT_FOUND'
  | 'JOB_FAILED'
  | 'REQUEST_REFUSED'
  | 'BAD_RESPONSE'
  | 'NOT_SUPPORTED'
  | 'CHECKSUM_MISMATCH'
  | 'INTERRUPTED';

const EXIT_OF: Record<CliErrorCode, ExitCode> = {
  NOT_SIGNED_IN: EXIT.AUTH,
  AUTH_REFUSED: EXIT.AUTH,
  API_UNREACHABLE: EXIT.UNREACHABLE,
  BAD_ARGUMENT: EXIT.USAGE,
  JOB_NOT_FOUND: EXIT.USAGE,
  JOB_FAILED: EXIT.JOB_FAILED,
  REQUEST_REFUSED: EXIT.JOB_FAILED,
  BAD_RESPONSE: EXIT.JOB_FAILED,
  NOT_SUPPORTED: EXIT.JOB_FAILED,
  CHECKSUM_MISMATCH: EXIT.JOB_FAILED,
  INTERRUPTED: EXIT.INTERRUPTED,
};

/** An error the CLI explains on stderr (what went wrong and what to do) before exiting with its code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(
    readonly code: CliErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
    this.exitCode = EXIT_OF[code];
  }
}
