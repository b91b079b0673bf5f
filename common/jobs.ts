import { z } from 'zod';
import { JobId, OwnerId } from './progress.js';

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

export const PRESETS = ['game-ready', 'mobile', 'archive'] as const;
export const Preset = z.enum(PRESETS);
export type Preset = z.infer<typeof Preset>;

/** A task queue name safe to take from a request: letters, digits and . _ - only, like `hpc-gpu-01`. */
export const HpcQueueName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, . _ or -, starting with a letter or digit');

/** Options an artist may set; anything unset comes from the preset (see common/pipeline.ts). */
export const JobOptions = z.object({
  preset: Preset.default('game-ready'),
  lodRatios: z.array(z.number().gt(0).lt(1)).max(6).optional(),
  maxTextureSize: z.number().int().min(16).max(16384).optional(),
  textureFormat: z.enum(['webp', 'ktx2', 'keep']).optional(),
  textureQuality: z.number().int().min(1).max(100).optional(),
  geometryCompression: z.enum(['meshopt', 'draco', 'none']).optional(),
  quantize: z.boolean().optional(),
  retentionDays: z.number().positive().max(365).optional(),
  compareWithGltfpack: z.boolean().optional(),
  /**
   * Pins the job's compute stages to the HPC worker started with HPC_TASK_QUEUE=<this name> (a host's own
   * queue) instead of the shared `hpc` queue. A job pinned to a queue no worker polls waits until one does.
   */
  hpcQueue: HpcQueueName.optional(),
});
export type JobOptions = z.infer<typeof JobOptions>;

/** Input of the processAsset workflow. The workflow id is the job id. */
export const ProcessAssetInput = z.object({
  owner: OwnerId,
  assetName: z.string().min(1).max(255),
  files: z.array(AssetFileSchema).min(1).max(256),
  options: JobOptions,
});
export type ProcessAssetInput = z.infer<typeof ProcessAssetInput>;

/** Counts read from an asset: produced by the inspect stage, read back by the API, the page and the CLI. */
export const AssetStatsSchema = z.object({
  fileBytes: z.number(),
  meshes: z.number(),
  primitives: z.number(),
  vertices: z.number(),
  triangles: z.number(),
  materials: z.number(),
  textures: z.array(
    z.object({ name: z.string(), mimeType: z.string(), width: z.number().nullable(), height: z.number().nullable(), bytes: z.number() }),
  ),
  extensionsUsed: z.array(z.string()),
});
export type AssetStats = z.infer<typeof AssetStatsSchema>;

/**
 * A job as the API lists it (GET /api/jobs, GET /api/jobs/:id): what Temporal knows about the workflow.
 * `status` is Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT.
 */
export const JobSummarySchema = z.object({
  jobId: JobId,
  assetName: z.string(),
  preset: z.string().nullable(),
  status: z.string(),
  stage: z.string().nullable(),
  outcome: z.string().nullable(),
  startTime: z.string(),
  closeTime: z.string().nullable(),
});
export type JobSummary = z.infer<typeof JobSummarySchema>;

/** One page of GET /api/jobs; pass nextBefore as `before` for the next one. */
export const JobPageSchema = z.object({ jobs: z.array(JobSummarySchema), nextBefore: z.string().nullable() });

/** What a finished job returns and the artist sees. */
export interface AssetReport {
  jobId: string;
  assetName: string;
  input: AssetStats;
}

/** Builds a job id that says what it is: `asset-<owner>-<uuid>`. */
export function newJobId(owner: string, uuid: string): string {
  return `asset-${JobId.parse(owner)}-${uuid}`;
}
