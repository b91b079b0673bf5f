import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import { FAILURE_TYPES } from '../common/pipeline.js';

/** Why a job failed, as the artist is told (the `error` of a `failed` event). */
export interface JobFailureReason {
  type: string;
  message: string;
  /** e.g. the glTF-Validator messages that made the asset invalid. */
  details?: unknown[];
}

/** Failure types the workflows themselves raise, for input that no retry can fix. */
export const WORKFLOW_FAILURE_TYPES = {
  INVALID_OPTIONS: 'InvalidOptions',
  INVALID_BATCH: 'InvalidBatch',
} as const;

/** Failure types whose message was written for the artist where it was raised, and is passed on as is. */
const ARTIST_FACING_TYPES: ReadonlySet<string> = new Set([
  FAILURE_TYPES.INVALID_ASSET,
  FAILURE_TYPES.UNSUPPORTED_ASSET,
  FAILURE_TYPES.ASSET_LIMIT,
  WORKFLOW_FAILURE_TYPES.INVALID_OPTIONS,
  WORKFLOW_FAILURE_TYPES.INVALID_BATCH,
]);

/** The failure that started it all: activity and child-workflow failures wrap the real one. */
function rootCause(err: unknown): unknown {
  let cause = err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  return cause;
}

/**
 * Maps any failure of a job to what the artist is shown. The one place where failure types become
 * artist-facing messages; internal error text stays in the workflow history for engineers.
 */
export function describeFailure(err: unknown): JobFailureReason {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type && ARTIST_FACING_TYPES.has(cause.type)) {
    return { type: cause.type, message: cause.message, details: cause.details?.length ? [...cause.details] : undefined };
  }
  if (cause instanceof ApplicationFailure && cause.type === FAILURE_TYPES.STORAGE) {
    return { type: cause.type, message: 'The processing machine could not read or write the job files. Try again later.' };
  }
  if (cause instanceof TimeoutFailure) {
    return { type: 'Timeout', message: 'A processing stage took too long and was stopped. Try again, or choose a lighter preset.' };
  }
  return {
    type: 'InternalError',
    message: 'Processing failed unexpectedly. Try again; if it fails again, report the job id to the pipeline team.',
  };
}
