import { z } from 'zod';
import { mergeSettings, type SettingsOptions } from './preset-settings.js';
import type { BuiltinStageActivities } from './stages.js';

/**
 * The asset pipeline's contract between the workflow (workflows/) and the compute activities
 * (activities/, HPC worker). Both sides import only this file for it.
 */

export const TextureFormat = z.enum(['webp', 'ktx2', 'keep']);
export const GeometryCompression = z.enum(['meshopt', 'draco', 'none']);

/** Fully resolved processing settings: a preset expanded, then explicit options applied on top. */
export const PipelineSettings = z.object({
  /** Simplification ratios of the LODs after LOD0 (the optimised full mesh), e.g. [0.5, 0.25]. */
  lodRatios: z.array(z.number().gt(0).lt(1)).max(6),
  /** Longest texture side after resizing. */
  maxTextureSize: z.number().int().min(16).max(16384),
  textureFormat: TextureFormat,
  /** WebP/KTX2 quality 1..100. */
  textureQuality: z.number().int().min(1).max(100),
  geometryCompression: GeometryCompression,
  /** Vertex quantisation (glTF-Transform quantize) on top of the compression. */
  quantize: z.boolean(),
  /** Days the outputs are kept before the retention timer deletes them. */
  retentionDays: z.number().positive().max(365),
  /**
   * Also run gltfpack (meshoptimizer's own tool) on the upload at comparable settings and report its size
   * and time beside the built-in pipeline's LOD0 (PackageResult.gltfpack).
   */
  compareWithGltfpack: z.boolean().default(false),
});
export type PipelineSettings = z.infer<typeof PipelineSettings>;

export { PRESET_SETTINGS } from './preset-settings.js';

/** What every compute activity is given. Intermediate files are the job's checkpoints in storage, worked on in the HPC worker's scratch. */
export type { StageRequest } from './jobs.js';

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

/** One glTF-Validator message, as the artist is shown it. */
export const ValidatorMessage = z.object({
  code: z.string(),
  message: z.string(),
  severity: z.enum(['error', 'warning', 'info', 'hint']),
  /** JSON pointer to the property concerned. */
  pointer: z.string().optional(),
  /** Byte offset in a GLB, for problems of the binary container (chunk lengths, truncation). */
  offset: z.number().optional(),
});
export type ValidatorMessage = z.infer<typeof ValidatorMessage>;

export const ValidationSummary = z.object({
  errors: z.number(),
  warnings: z.number(),
  /** Warnings and infos kept for the report (errors end the job instead). */
  messages: z.array(ValidatorMessage),
});
export type ValidationSummary = z.infer<typeof ValidationSummary>;

export const OptimizeResult = z.object({
  stats: AssetStatsSchema,
  /** Steps applied, in order (dedup, weld, prune, resample, quantize, meshopt…). */
  steps: z.array(z.string()),
});
export type OptimizeResult = z.infer<typeof OptimizeResult>;

export const LodResult = z.object({
  /** 1 for the first simplified LOD; LOD0 is the optimised full mesh. */
  level: z.number().int(),
  ratio: z.number(),
  targetTriangles: z.number(),
  triangles: z.number(),
  /** Why the level differs from what its ratio asks (e.g. a mesh too small to simplify keeps its triangles). */
  note: z.string().optional(),
});
export type LodResult = z.infer<typeof LodResult>;

const ImageFacts = z.object({ width: z.number(), height: z.number(), bytes: z.number(), mimeType: z.string() });
export const TextureResult = z.object({
  name: z.string(),
  before: ImageFacts,
  after: ImageFacts,
  /**
   * How closely the delivered image matches the upload's at the delivered size (resizing aside): the
   * largest channel error (0..255), PSNR in dB (null when identical), and how it was encoded: lossy,
   * lossless (lossy would have changed colours visibly) or source (the upload's image kept as it is).
   */
  fidelity: z
    .object({ maxChannelError: z.number(), psnrDb: z.number().nullable(), encoding: z.enum(['lossy', 'lossless', 'source']) })
    .optional(),
  /** The Basis Universal codec of a KTX2 texture: ETC1S for colour, UASTC for normal maps and data. */
  codec: z.enum(['etc1s', 'uastc']).optional(),
  /** Why the result differs from the settings (e.g. lossy would have changed colours visibly, lossless written). */
  warnings: z.array(z.string()).optional(),
  /**
   * The smaller copies the simplified LODs carry (LOD n at √ratio of LOD0's sides, so its pixels shrink with
   * its triangles). A LOD not listed shares LOD0's image: small textures (palettes) are never shrunk.
   */
  lods: z.array(ImageFacts.extend({ level: z.number().int().positive() })).optional(),
  /** True when a retried attempt kept this texture from the attempt before instead of redoing it. */
  resumed: z.boolean().optional(),
});
export type TextureResult = z.infer<typeof TextureResult>;

/** What the import stage did: Blender turned an FBX, OBJ or .blend upload into the GLB the pipeline reads. */
export const ImportResult = z.object({
  /** The uploaded model file, and its format (fbx, obj, blend). */
  source: z.string(),
  format: z.string(),
  /** The GLB's name in the job's work folder, and its size. */
  glb: z.string(),
  bytes: z.number(),
  ms: z.number(),
  /** Which Blender did it (BLENDER_PATH or the bpy module). */
  blender: z.string(),
});
export type ImportResult = z.infer<typeof ImportResult>;

/** The preview stage's downloadable outputs, beside the LOD GLBs and report.json: the page shows them by these names. */
export const PREVIEW_FILES = { turntable: 'turntable.webp', thumbnail: 'thumbnail.webp' } as const;

/** The preview stage's turntable (animated WebP) and thumbnail, or why there are none. */
export const PreviewResult = z.discriminatedUnion('rendered', [
  z.object({
    rendered: z.literal(true),
    frames: z.number().int(),
    size: z.number().int(),
    samples: z.number().int(),
    ms: z.number(),
    turntable: z.object({ name: z.string(), bytes: z.number() }),
    thumbnail: z.object({ name: z.string(), bytes: z.number() }),
  }),
  z.object({ rendered: z.literal(false), note: z.string() }),
]);
export type PreviewResult = z.infer<typeof PreviewResult>;

/** One file the artist can download. */
export const OutputFile = z.object({
  name: z.string(),
  bytes: z.number(),
  sha256: z.string(),
  kind: z.enum(['glb', 'report', 'preview']),
  /** LOD level for GLBs. */
  level: z.number().int().optional(),
});
export type OutputFile = z.infer<typeof OutputFile>;

/** gltfpack beside the built-in pipeline, for the same upload at comparable settings. */
export const GltfpackComparison = z.object({
  /** gltfpack's command line after the program name. */
  args: z.array(z.string()),
  bytes: z.number(),
  /** Of gltfpack's bytes, those of images it kept as uploaded (it has no texture encoders here). */
  imageBytes: z.number(),
  ms: z.number(),
  /** The built-in pipeline's LOD0 size, and gltfpack's size divided by it. */
  builtinBytes: z.number(),
  ratio: z.number(),
});
export type GltfpackComparison = z.infer<typeof GltfpackComparison>;

export const PackageResult = z.object({
  outputs: z.array(OutputFile),
  /** glTF-Validator errors across all outputs (0 when the job succeeds). */
  validationErrors: z.number(),
  /** Stats of LOD0 as delivered. */
  stats: AssetStatsSchema,
  /** Present when settings.compareWithGltfpack was set. */
  gltfpack: GltfpackComparison.optional(),
  /** Steps applied while packaging (quantize, meshopt or draco compression, texture swaps). */
  steps: z.array(z.string()).optional(),
  /** Why an output differs from what the settings promise, per file (e.g. LOD0 larger than the upload, and why). */
  notes: z.array(z.string()).optional(),
});
export type PackageResult = z.infer<typeof PackageResult>;

/** What the completed workflow returns and the result view shows. */
export const PipelineReport = z.object({
  jobId: z.string(),
  assetName: z.string(),
  settings: PipelineSettings,
  input: AssetStatsSchema,
  validation: ValidationSummary,
  optimize: OptimizeResult,
  lods: z.array(LodResult),
  textures: z.array(TextureResult),
  package: PackageResult,
  /** ISO time at which the outputs are deleted. */
  expiresAt: z.string(),
  /** Results of the plan's other stages (studio stages, common/stages.ts), by stage name. */
  stages: z.record(z.string(), z.unknown()).optional(),
});
export type PipelineReport = z.infer<typeof PipelineReport>;

/**
 * Signatures of the HPC compute activities: one per built-in stage (common/stages.ts, its descriptor's
 * activity and result), plus the job's cleanup. activities/ implements them; the workflow proxies them.
 * Each heartbeats HeartbeatDetails (activities/progress-reporter.ts) and resumes from its checkpoint
 * when retried. Bad input fails with ApplicationFailure.nonRetryable(…, 'INVALID_ASSET', details).
 */
export type PipelineActivities = BuiltinStageActivities & {
  /** Removes the job's stage checkpoints, and its outputs unless keepOutputs (cancel/failure cleanup). Idempotent. */
  cleanupJob(request: { jobId: string; keepOutputs: boolean }): Promise<void>;
  /** Deletes all of the job's data and its hold on its uploads when the retention runs out. Idempotent. */
  deleteOutputs(request: { jobId: string }): Promise<void>;
};

/** Expands options into settings (mergeSettings) and checks them: throws on an unknown preset or a bad value. */
export function resolveSettings(options: SettingsOptions): PipelineSettings {
  return PipelineSettings.parse(mergeSettings(options));
}
