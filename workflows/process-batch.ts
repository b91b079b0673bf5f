import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  patched,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { ProcessAssetInput, ProcessBatchInput } from '../common/jobs.js';
import { PRIORITY_KEYS, priorityName } from '../common/job-priority.js';
import { ASSET_NAME, ASSET_OWNER, ASSET_PRESET, ASSET_PRIORITY } from '../common/search-attributes.js';
import { FAILURES } from '../common/failure-catalogue.js';
import { describeFailure, type JobFailureReason } from './failure-reasons.js';
import { jobEventPublisher, publishesEventsLocally } from './job-events.js';
import { processAsset } from './process-asset.js';
import { batchProgressQuery, type BatchProgress } from './queries.js';

export type { ProcessBatchInput };

/** Patch id of the batch's per-asset `stage-finished` events (its aggregate progress). */
export const BATCH_ASSET_EVENTS_PATCH = 'batch-asset-events';

/** What became of one asset of a batch; its full report is the result of its own job. */
export interface BatchAssetOutcome {
  jobId: string;
  assetName: string;
  status: 'completed' | 'failed' | 'cancelled';
  error?: JobFailureReason;
}

/**
 * Many assets processed as one batch: a processAsset child per asset, at most `concurrency` at a time.
 * Each child is an ordinary job of the owner (its own id, events and search attributes), so it shows in
 * the owner's job list; one failing asset does not stop the others.
 */
export async function processBatch(input: ProcessBatchInput): Promise<BatchAssetOutcome[]> {
  const batchId = workflowInfo().workflowId;
  // Decided once, before any other command: see publishesEventsLocally.
  const { publish } = jobEventPublisher(batchId, input.owner, {
    local: publishesEventsLocally(),
    name: `The batch of ${input.assets.length} assets`,
  });
  const strangers = input.assets.filter((asset) => asset.owner !== input.owner);
  if (strangers.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `Every asset of a batch must belong to ${input.owner}; ${strangers.map((a) => a.assetName).join(', ')} do not`,
      FAILURES.INVALID_BATCH.code,
    );
  }

  const announcesAssets = patched(BATCH_ASSET_EVENTS_PATCH);
  const total = input.assets.length;
  const progress: BatchProgress = { total, done: 0, failed: 0, cancelled: 0, running: 0, waiting: total };
  setHandler(batchProgressQuery, () => progress);
  const outcomes: BatchAssetOutcome[] = [];

  await publish('started', `Processing ${total} assets, ${input.concurrency} at a time`);
  let next = 0;
  const runner = async () => {
    // Workflow code is single-threaded, so taking `next` needs no lock.
    while (next < total && !CancellationScope.current().consideredCancelled) {
      const index = next++;
      progress.waiting--;
      progress.running++;
      const outcome = await runAsset(input.assets[index]!);
      outcomes[index] = outcome;
      progress.running--;
      progress[outcome.status === 'completed' ? 'done' : outcome.status]++;
      // The batch's own stream says how far it got, one event per asset job that ended: the page and
      // the CLI show the batch's percent from it (docs/PROTOCOL.md). Runs recorded before this replay without.
      if (announcesAssets)
        await publish('stage-finished', `${outcome.assetName} ${outcome.status}`, {
          stage: 'asset',
          result: { ...outcome, total, done: progress.done, failed: progress.failed, cancelled: progress.cancelled },
        });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(input.concurrency, total)) }, runner));

  const result = { total, done: progress.done, failed: progress.failed, cancelled: progress.cancelled };
  if (CancellationScope.current().consideredCancelled) {
    await CancellationScope.nonCancellable(() =>
      publish('cancelled', `Batch cancelled after ${progress.done} of ${total} assets`, { result }),
    );
    throw new CancelledFailure('Batch cancelled');
  }
  await publish('completed', `${progress.done} of ${total} assets processed`, { result });
  return outcomes;
}

/** Runs one asset's job to its end and says how it ended; never throws, so the batch carries on. */
async function runAsset(asset: ProcessAssetInput): Promise<BatchAssetOutcome> {
  const jobId = `asset-${asset.owner}-${uuid4()}`;
  try {
    await executeChild(processAsset, {
      workflowId: jobId,
      args: [asset],
      // Ending the batch cancels its running jobs, so their cleanup runs (TERMINATE would skip it).
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: [
        { key: ASSET_OWNER, value: asset.owner },
        { key: ASSET_NAME, value: asset.assetName },
        { key: ASSET_PRESET, value: asset.options.preset },
        // The batch's priority, which the child inherits with its fair share.
        { key: ASSET_PRIORITY, value: priorityName(workflowInfo().priority?.priorityKey || PRIORITY_KEYS.normal) },
      ],
      staticSummary: `${asset.assetName} for ${asset.owner}, ${asset.options.preset} (batch ${workflowInfo().workflowId})`,
    });
    return { jobId, assetName: asset.assetName, status: 'completed' };
  } catch (err) {
    if (isCancellation(err)) return { jobId, assetName: asset.assetName, status: 'cancelled' };
    return { jobId, assetName: asset.assetName, status: 'failed', error: describeFailure(err) };
  }
}
