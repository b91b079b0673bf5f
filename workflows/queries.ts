import { defineQuery, defineUpdate } from '@temporalio/workflow';

/** Where an asset job is, from the workflow's own state (the Redis mirror may lag or be down). */
export type AssetJobStatus = 'running' | 'cancelling' | 'cleaning-up' | 'completed' | 'failed' | 'cancelled';

/** Answer of the `progress` query on processAsset: the stage now running (or the last one that ran). */
export interface AssetProgress {
  /** null before the first stage starts. */
  stage: string | null;
  /** Index of `stage` in the job's plan, or null before the first stage starts. */
  stageIndex: number | null;
  stageCount: number;
  status: AssetJobStatus;
}

/** For engineers and tools (`temporal workflow query --type progress`): the job's stage and status. */
export const progressQuery = defineQuery<AssetProgress>('progress');

/** Answer of the `batchProgress` query on processBatch: counts of the batch's asset jobs. */
export interface BatchProgress {
  total: number;
  /** Completed successfully. */
  done: number;
  failed: number;
  cancelled: number;
  running: number;
  /** Not started yet (waiting for a concurrency slot). */
  waiting: number;
}

export const batchProgressQuery = defineQuery<BatchProgress>('batchProgress');

/**
 * Changes how long a running job's outputs are kept (days, 1-365), e.g. when an engineer knows a review
 * will take longer; applies to the expiry scheduled when the job completes. Answers the new retention.
 * `temporal workflow update execute --name setRetentionDays -w <jobId> --input 30`.
 */
export const setRetentionDaysUpdate = defineUpdate<number, [days: number]>('setRetentionDays');
