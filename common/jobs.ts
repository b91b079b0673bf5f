import { z } from 'zod';
import { JOB_PRIORITIES, type JobPriority as PriorityLevel } from './job-priority.js';
import { OutputFile, PipelineSettings } from './pipeline.js';
import { JobId, OwnerId } from './progress.js';
import { StagePlan } from './stages.js';

/** One uploaded file of an asset, by the name the artist gave it and the digest of its stored bytes. */
export const AssetFileSchema = z.object({
  name: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\\0]+$/, 'must be a plain file name')
    .refine((n) => n !== '.' && n !== '..', 'must be a plain file name'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
});

/** How soon a job should get an HPC slot (common/job-priority.ts); parses one. */
export const JobPriority = z.enum(JOB_PRIORITIES);
export type JobPriority = PriorityLevel;

export const PRESETS = ['game-ready', 'mobile', 'archive'] as const;
export const Preset = z.enum(PRESETS);
export type Preset = z.infer<typeof Preset>;

/** A task queue name safe to take from a request: letters, digits and . _ - only, like `hpc-gpu-01`. */
export const HpcQueueName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, . _ or -, starting with a letter or digit');

/**
 * Options an artist may set: a preset, and any of its PipelineSettings to override (common/pipeline.ts);
 * anything unset comes from the preset.
 */
export const JobOptions = PipelineSettings
  // No default here: an option left out must not override the preset's value.
  .extend({ compareWithGltfpack: z.boolean() })
  .partial()
  .extend({
    preset: Preset.default('game-ready'),
    /**
     * Pins the job's compute stages to the HPC worker started with HPC_TASK_QUEUE=<this name> (a host's own
     * queue) instead of the shared `hpc` queue. A job pinned to a queue no worker polls waits until one does.
     */
    hpcQueue: HpcQueueName.optional(),
    /**
     * Its place among the jobs waiting for the HPC machines (common/job-priority.ts); `urgent` only for
     * users the API allows (API_URGENT_USERS or the token's role). Unset is normal.
     */
    priority: JobPriority.optional(),
  });
export type JobOptions = z.infer<typeof JobOptions>;

/** Input of the processAsset workflow. The workflow id is the job id. */
export const ProcessAssetInput = z.object({
  owner: OwnerId,
  assetName: z.string().min(1).max(255),
  files: z.array(AssetFileSchema).min(1).max(256),
  options: JobOptions,
  /**
   * The job's stages, resolved from the registry when it starts (common/stages.ts planStages). Absent for
   * jobs started before the registry: they run PLAN_BEFORE_REGISTRY.
   */
  plan: StagePlan.optional(),
});
export type ProcessAssetInput = z.infer<typeof ProcessAssetInput>;

/** Most assets one batch may hold (POST /api/batches). */
export const MAX_BATCH_ASSETS = 500;

/** Input of the processBatch workflow: each asset becomes its own processAsset job, a child of the batch. */
export const ProcessBatchInput = z.object({
  owner: OwnerId,
  /** Each becomes its own processAsset job; every one must belong to `owner`. */
  assets: z.array(ProcessAssetInput).min(1).max(MAX_BATCH_ASSETS),
  /** Most asset jobs running at once. */
  concurrency: z.number().int().min(1).max(MAX_BATCH_ASSETS),
});
export type ProcessBatchInput = z.infer<typeof ProcessBatchInput>;

/** What every compute activity is given (common/pipeline.ts PipelineActivities), checked again on arrival. */
export const StageRequestSchema = z.object({ input: ProcessAssetInput, settings: PipelineSettings });
export type StageRequest = z.infer<typeof StageRequestSchema>;

/** The inspect stage's counts, defined with the other stage results in common/pipeline.ts. */
export { AssetStatsSchema, type AssetStats } from './pipeline.js';

/** What a retried job records of its origin, in its memo (`retry`): what it retries, who asked and when. */
export const JobRetrySchema = z.object({
  /** The job id it retries. */
  retryOf: JobId,
  /** Who asked for the retry. */
  by: OwnerId,
  /** When, ISO 8601. */
  at: z.iso.datetime(),
});
export type JobRetry = z.infer<typeof JobRetrySchema>;

/**
 * A job as the API lists it (GET /api/jobs, GET /api/jobs/:id): what Temporal knows about the workflow.
 * `status` is Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT.
 */
export const JobSummarySchema = z.object({
  jobId: JobId,
  assetName: z.string(),
  preset: z.string().nullable(),
  /** urgent, normal or background (null for jobs started before priorities existed). */
  priority: JobPriority.nullable().catch(null),
  /** The job this one retries, when it is a retry. */
  retryOf: JobId.nullable().catch(null),
  /** Who asked for the retry and when (the memo's record), when it is one. */
  retry: JobRetrySchema.nullable().catch(null),
  /** `batch` for a batch of assets (processBatch, POST /api/batches), else `asset`. */
  kind: z.enum(['asset', 'batch']).catch('asset'),
  /** The batch this asset job belongs to, when it is one of a batch's. */
  batchId: JobId.nullable().catch(null),
  status: z.string(),
  stage: z.string().nullable(),
  outcome: z.string().nullable(),
  startTime: z.string(),
  closeTime: z.string().nullable(),
});
export type JobSummary = z.infer<typeof JobSummarySchema>;

/** One page of GET /api/jobs; pass nextBefore as `before` for the next one. */
export const JobPageSchema = z.object({ jobs: z.array(JobSummarySchema), nextBefore: z.string().nullable() });

/**
 * One file of GET /api/jobs/:id/outputs: the pipeline's OutputFile as found on disk, a path relative to
 * the job's output folder, which may also hold files the report does not list (`other`).
 */
export const JobOutputSchema = OutputFile.extend({
  name: z.string().min(1),
  bytes: z.number().int().nonnegative(),
  /** The same as bytes (the name a plain directory listing uses). */
  size: z.number().int().nonnegative(),
  kind: z.enum([...OutputFile.shape.kind.options, 'other']),
  /** LOD level of a GLB, read from its `-lod<N>.glb` name. */
  level: z.number().int().nonnegative().optional(),
  modifiedAt: z.string(),
});
export type JobOutput = z.infer<typeof JobOutputSchema>;

/** GET /api/jobs/:id/outputs. */
export const JobOutputsSchema = z.object({ jobId: JobId, outputs: z.array(JobOutputSchema) });

/** GET /api/jobs/:id/inputs: the files the job was submitted with (each served at /inputs/<name>). */
export const JobInputsSchema = z.object({
  jobId: JobId,
  /** The model file among them (common/model-files.ts). */
  model: z.string(),
  inputs: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative() })),
});
export type JobInputs = z.infer<typeof JobInputsSchema>;

/** Builds a job id that says what it is: `asset-<owner>-<uuid>`. */
export function newJobId(owner: string, uuid: string): string {
  return `asset-${JobId.parse(owner)}-${uuid}`;
}
