import { z } from 'zod';
import type { AssetStats, ProcessAssetInput } from './jobs.js';

/**
 * The asset pipeline's contract between the workflow (workflows/) and the compute activities
 * (activities/, HPC worker). Both sides import only this file for it.
 */

/** Stages in the order the artist sees them. Each is one heartbeating activity on the HPC queue. */
export const STAGES = ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package'] as const;
export type Stage = (typeof STAGES)[number];

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

export const PRESET_SETTINGS: Record<'game-ready' | 'mobile' | 'archive', PipelineSettings> = {
  'game-ready': {
    lodRatios: [0.5, 0.25],
    maxTextureSize: 2048,
    textureFormat: 'webp',
    textureQuality: 85,
    geometryCompression: 'meshopt',
    quantize: true,
    retentionDays: 7,
    compareWithGltfpack: false,
  },
  mobile: {
    lodRatios: [0.5, 0.25, 0.1],
    maxTextureSize: 1024,
    textureFormat: 'webp',
    textureQuality: 75,
    geometryCompression: 'meshopt',
    quantize: true,
    retentionDays: 7,
    compareWithGltfpack: false,
  },
  archive: {
    lodRatios: [],
    maxTextureSize: 8192,
    textureFormat: 'keep',
    textureQuality: 100,
    geometryCompression: 'none',
    quantize: false,
    retentionDays: 30,
    compareWithGltfpack: false,
  },
};

/** What every compute activity is given. Intermediate files live in the job's work folder on the HPC machine's storage. */
export interface StageRequest {
  input: ProcessAssetInput;
  settings: PipelineSettings;
}

/** One glTF-Validator message, as the artist is shown it. */
export interface ValidatorMessage {
  code: string;
  message: string;
  severity: 'error' | 'warning' | 'info' | 'hint';
  /** JSON pointer to the property concerned. */
  pointer?: string;
  /** Byte offset in a GLB, for problems of the binary container (chunk lengths, truncation). */
  offset?: number;
}

export interface ValidationSummary {
  errors: number;
  warnings: number;
  /** Warnings and infos kept for the report (errors end the job instead). */
  messages: ValidatorMessage[];
}

export interface OptimizeResult {
  stats: AssetStats;
  /** Steps applied, in order (dedup, weld, prune, resample, quantize, meshopt…). */
  steps: string[];
}

export interface LodResult {
  /** 1 for the first simplified LOD; LOD0 is the optimised full mesh. */
  level: number;
  ratio: number;
  targetTriangles: number;
  triangles: number;
  /** Why the level differs from what its ratio asks (e.g. a mesh too small to simplify keeps its triangles). */
  note?: string;
}

export interface TextureResult {
  name: string;
  before: { width: number; height: number; bytes: number; mimeType: string };
  after: { width: number; height: number; bytes: number; mimeType: string };
  /**
   * How closely the delivered image matches the upload's at the delivered size (resizing aside): the
   * largest channel error (0..255), PSNR in dB (null when identical), and how it was encoded: lossy,
   * lossless (lossy would have changed colours visibly) or source (the upload's image kept as it is).
   */
  fidelity?: { maxChannelError: number; psnrDb: number | null; encoding: 'lossy' | 'lossless' | 'source' };
  /** Why the result differs from the settings (e.g. KTX2 asked, no encoder on this machine, WebP written). */
  warnings?: string[];
  /** True when a retried attempt kept this texture from the attempt before instead of redoing it. */
  resumed?: boolean;
}

/** One file the artist can download. */
export interface OutputFile {
  name: string;
  bytes: number;
  sha256: string;
  kind: 'glb' | 'report';
  /** LOD level for GLBs. */
  level?: number;
}

/** gltfpack beside the built-in pipeline, for the same upload at comparable settings. */
export interface GltfpackComparison {
  /** gltfpack's command line after the program name. */
  args: string[];
  bytes: number;
  /** Of gltfpack's bytes, those of images it kept as uploaded (it has no texture encoders here). */
  imageBytes: number;
  ms: number;
  /** The built-in pipeline's LOD0 size, and gltfpack's size divided by it. */
  builtinBytes: number;
  ratio: number;
}

export interface PackageResult {
  outputs: OutputFile[];
  /** glTF-Validator errors across all outputs (0 when the job succeeds). */
  validationErrors: number;
  /** Stats of LOD0 as delivered. */
  stats: AssetStats;
  /** Present when settings.compareWithGltfpack was set. */
  gltfpack?: GltfpackComparison;
  /** Steps applied while packaging (quantize, meshopt or draco compression, texture swaps). */
  steps?: string[];
  /** Why an output differs from what the settings promise, per file (e.g. LOD0 larger than the upload, and why). */
  notes?: string[];
}

/** What the completed workflow returns and the result view shows. */
export interface PipelineReport {
  jobId: string;
  assetName: string;
  settings: PipelineSettings;
  input: AssetStats;
  validation: ValidationSummary;
  optimize: OptimizeResult;
  lods: LodResult[];
  textures: TextureResult[];
  package: PackageResult;
  /** ISO time at which the outputs are deleted. */
  expiresAt: string;
}

/**
 * Signatures of the HPC compute activities. activities/ implements them; the workflow proxies them.
 * Each heartbeats HeartbeatDetails (activities/progress-reporter.ts) and resumes from its checkpoint
 * when retried. Bad input fails with ApplicationFailure.nonRetryable(…, 'INVALID_ASSET', details).
 */
export interface PipelineActivities {
  inspectAsset(request: StageRequest): Promise<AssetStats>;
  validateAsset(request: StageRequest): Promise<ValidationSummary>;
  optimizeAsset(request: StageRequest): Promise<OptimizeResult>;
  buildLods(request: StageRequest): Promise<LodResult[]>;
  processTextures(request: StageRequest): Promise<TextureResult[]>;
  packageOutputs(request: StageRequest): Promise<PackageResult>;
  /** Removes the job's work folder and any partial outputs (cancel/failure cleanup). Idempotent. */
  cleanupJob(request: { jobId: string; keepOutputs: boolean }): Promise<void>;
  /** Deletes the job's outputs when retention runs out. Idempotent. */
  deleteOutputs(request: { jobId: string }): Promise<void>;
}

/** Expands options into settings: the preset's values with any explicit option on top. */
export function resolveSettings(options: { preset: keyof typeof PRESET_SETTINGS } & Partial<PipelineSettings>): PipelineSettings {
  const { preset, ...explicit } = options;
  const defined = Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined));
  return PipelineSettings.parse({ ...PRESET_SETTINGS[preset], ...defined });
}
