import { FAILURES } from '../common/failures.js';

/**
 * A processed output that glTF-Validator rejects: a pipeline bug, not the artist's fault, and retrying
 * would produce the same file. The activity wrapper fails it as non-retryable OUTPUT_INVALID.
 */
export class OutputInvalidError extends Error {
  readonly code = FAILURES.OUTPUT_INVALID.code;
  constructor(message: string) {
    super(message);
    this.name = 'OutputInvalidError';
  }
}
