import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import { FAILURES, jobFailureCodeOf } from '../common/failure-catalogue.js';
import type { JobFailureReason } from '../common/progress.js';

export type { JobFailureReason };

/** Failure codes whose message was written for the artist where it was raised, and is passed on as is. */
const ARTIST_FACING_CODES: ReadonlySet<string> = new Set([
  FAILURES.INVALID_ASSET.code,
  FAILURES.UNSUPPORTED_ASSET.code,
  FAILURES.ASSET_LIMIT.code,
  FAILURES.INVALID_OPTIONS.code,
  FAILURES.INVALID_BATCH.code,
  // Blender's own reason, the file named, never a path on the farm (activities/blender/import-to-gltf.py).
  FAILURES.MODEL_UNREADABLE.code,
]);

/** The failure that started it all: activity and child-workflow failures wrap the real one. */
function rootCause(err: unknown): unknown {
  let cause = err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  return cause;
}

/**
 * Maps any failure of a job to what the artist is shown. Failure codes and their sentences come from the
 * catalogue (common/failure-catalogue.ts); internal error text stays in the workflow history for engineers.
 */
export function describeFailure(err: unknown): JobFailureReason {
  const cause = rootCause(err);
  if (cause instanceof ApplicationFailure && cause.type && ARTIST_FACING_CODES.has(cause.type)) {
    return {
      type: jobFailureCodeOf(cause.type),
      message: cause.message,
      details: cause.details?.length ? [...cause.details] : undefined,
    };
  }
  const code =
    cause instanceof TimeoutFailure ? 'TIMEOUT' : cause instanceof ApplicationFailure ? jobFailureCodeOf(cause.type) : 'INTERNAL';
  const { message, advice } = FAILURES[code];
  return { type: code, message: `${message} ${advice}` };
}
