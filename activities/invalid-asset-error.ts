import { FAILURES } from '../common/failures.js';
import type { ValidatorMessage } from '../common/pipeline.js';

/** Catalogue codes of input that will fail the same way on every attempt (common/failures.ts). */
export type AssetFailureType = 'INVALID_ASSET' | 'UNSUPPORTED_ASSET' | 'ASSET_LIMIT';

/**
 * Input that will never process, however often it is retried: the activity wrapper turns it into
 * ApplicationFailure.nonRetryable(message, code, details) on the first attempt. `code` says whose it is:
 * INVALID_ASSET (the file is broken), UNSUPPORTED_ASSET (valid, but uses something this pipeline cannot
 * process) or ASSET_LIMIT (over a configured complexity limit). Thrown inside stage threads, so it carries
 * only plain data that survives structured cloning.
 */
export class InvalidAssetError extends Error {
  constructor(
    message: string,
    readonly details: ValidatorMessage[] = [],
    readonly code: AssetFailureType = FAILURES.INVALID_ASSET.code,
  ) {
    super(message);
    this.name = 'InvalidAssetError';
  }
}

/** A single error message for a problem found before or outside glTF-Validator. */
export function invalidAsset(message: string, code: string, pointer?: string): InvalidAssetError {
  return new InvalidAssetError(message, [{ code, message, severity: 'error', ...(pointer !== undefined ? { pointer } : {}) }]);
}

/** A valid asset this pipeline cannot process, said in words (never a library's stack fragment). */
export function unsupportedAsset(message: string, code: string, pointer?: string): InvalidAssetError {
  return new InvalidAssetError(
    message,
    [{ code, message, severity: 'error', ...(pointer !== undefined ? { pointer } : {}) }],
    FAILURES.UNSUPPORTED_ASSET.code,
  );
}

/** An asset over one of the configured complexity limits (common/config.ts assetLimits). */
export function assetOverLimit(message: string, code: string): InvalidAssetError {
  return new InvalidAssetError(message, [{ code, message, severity: 'error' }], FAILURES.ASSET_LIMIT.code);
}

/**
 * Errors that recur for the same input however often the stage runs: a library's recursion or string
 * limit hit by the asset's size or shape, and programming errors (TypeError, an assertion) a library
 * meets on this input. Each becomes UNSUPPORTED_ASSET or ASSET_LIMIT with a sentence for the artist, on
 * the first attempt; anything else (I/O, a lost worker, a timeout) stays retryable.
 */
export function deterministicFailure(err: unknown, fileName: string): InvalidAssetError | null {
  if (err instanceof InvalidAssetError) return err;
  if (!(err instanceof Error)) return null;
  if (err instanceof RangeError && /call stack size/i.test(err.message)) {
    return unsupportedAsset(
      `${fileName} is nested too deeply for this pipeline to process (its JSON or node tree is too deep). Flatten the hierarchy and export again.`,
      'NESTING_TOO_DEEP',
    );
  }
  if (err instanceof RangeError && /invalid string length|array buffer allocation failed|invalid array length/i.test(err.message)) {
    return assetOverLimit(
      `${fileName} is too large for this pipeline to hold in memory. Split it into smaller assets or upload it as .glb with external textures.`,
      'ASSET_TOO_LARGE',
    );
  }
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  const programmingError =
    err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || /^assertion failed/i.test(err.message);
  if (programmingError && code === undefined) {
    return unsupportedAsset(
      `${fileName} passed validation, but the pipeline failed while processing it: a fault in the farm, not in your file, and trying again would fail the same way. Report the job id to the pipeline team.`,
      'PIPELINE_FAULT',
    );
  }
  return null;
}
