import { FAILURES } from '../common/failures.js';
import type { ValidatorMessage } from '../common/pipeline.js';

/**
 * Input that will never process, however often it is retried: the activity wrapper turns it into
 * ApplicationFailure.nonRetryable(message, 'INVALID_ASSET', details). Thrown inside stage threads, so it
 * carries only plain data that survives structured cloning.
 */
export class InvalidAssetError extends Error {
  readonly code = FAILURES.INVALID_ASSET.code;
  constructor(
    message: string,
    readonly details: ValidatorMessage[] = [],
  ) {
    super(message);
    this.name = 'InvalidAssetError';
  }
}

/** A single error message for a problem found before or outside glTF-Validator. */
export function invalidAsset(message: string, code: string, pointer?: string): InvalidAssetError {
  return new InvalidAssetError(message, [{ code, message, severity: 'error', ...(pointer !== undefined ? { pointer } : {}) }]);
}
