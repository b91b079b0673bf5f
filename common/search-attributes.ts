import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes every asset job carries. The dev server registers them at start from
 * temporal-config/search-attributes.json; a production cluster registers them once with
 * `temporal operator search-attribute create` (see README). Keep both in step with this file.
 */
export const ASSET_OWNER = defineSearchAttributeKey('AssetOwner', SearchAttributeType.KEYWORD);
export const ASSET_NAME = defineSearchAttributeKey('AssetName', SearchAttributeType.KEYWORD);
export const ASSET_PRESET = defineSearchAttributeKey('AssetPreset', SearchAttributeType.KEYWORD);
export const ASSET_STAGE = defineSearchAttributeKey('AssetStage', SearchAttributeType.KEYWORD);
export const ASSET_OUTCOME = defineSearchAttributeKey('AssetOutcome', SearchAttributeType.KEYWORD);
/** True while the job's running stage makes no progress (see activities/stall-watch.ts). */
export const ASSET_STALLED = defineSearchAttributeKey('AssetStalled', SearchAttributeType.BOOL);
/** urgent, normal or background: the job's place among those waiting for the HPC machines (common/job-priority.ts). */
export const ASSET_PRIORITY = defineSearchAttributeKey('AssetPriority', SearchAttributeType.KEYWORD);
/** The job id a retried job retries (set at start; `AssetRetryOf = "asset-…"` finds every retry of a job). */
export const ASSET_RETRY_OF = defineSearchAttributeKey('AssetRetryOf', SearchAttributeType.KEYWORD);
