import { FAILURE_TYPES } from '../common/pipeline.js';

/**
 * A processed output that glTF-Validator rejects: a pipeline bug, not the artist's fault, and retrying
 * would produce the same file. The activity wrapper fails it as non-retryable 'OutputInvalid'.
 */
export class OutputInvalidError extends Error {
  readonly code = FAILURE_TYPES.OUTPUT_INVALID;
  constructor(message: string) {
    super(message);
    this.name = 'OutputInvalidError';
  }
}
