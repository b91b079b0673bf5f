import path from 'node:path';
import { z } from 'zod';
import { AssetStatsSchema } from '../common/jobs.js';

/**
 * Where each stage leaves its result in the job's work folder for the next stage, and the shape of what
 * it leaves. Stages run in separate activities (possibly on another attempt), so they hand over on disk.
 */
export const workFiles = {
  inputDir: (workDir: string) => path.join(workDir, 'input'),
  inspect: (workDir: string) => path.join(workDir, 'inspect.json'),
  /** glTF-Validator's summary of the upload, written by inspect (which runs the validator first). */
  validation: (workDir: string) => path.join(workDir, 'validation.json'),
  /** What the upload carries that every output must keep (animations, skins, lights…), written by inspect. */
  inputFeatures: (workDir: string) => path.join(workDir, 'input-features.json'),
  optimized: (workDir: string) => path.join(workDir, 'optimized.glb'),
  optimizeResult: (workDir: string) => path.join(workDir, 'optimize.json'),
  lodsDir: (workDir: string) => path.join(workDir, 'lods'),
  lodGlb: (workDir: string, level: number) => path.join(workDir, 'lods', `lod${level}.glb`),
  lodResult: (workDir: string, level: number) => path.join(workDir, 'lods', `lod${level}.json`),
  texturesDir: (workDir: string) => path.join(workDir, 'textures'),
  textureResult: (workDir: string, index: number) => path.join(workDir, 'textures', `${index}.json`),
  textureImage: (workDir: string, index: number, extension: string) => path.join(workDir, 'textures', `${index}.${extension}`),
};

export { AssetStatsSchema };

export const OptimizeResultSchema = z.object({ stats: AssetStatsSchema, steps: z.array(z.string()) });

export const LodResultSchema = z.object({
  level: z.number().int(),
  ratio: z.number(),
  targetTriangles: z.number(),
  triangles: z.number(),
  note: z.string().optional(),
});

const ImageFacts = z.object({ width: z.number(), height: z.number(), bytes: z.number(), mimeType: z.string() });
export const TextureResultSchema = z.object({
  name: z.string(),
  before: ImageFacts,
  after: ImageFacts,
  fidelity: z
    .object({ maxChannelError: z.number(), psnrDb: z.number().nullable(), encoding: z.enum(['lossy', 'lossless', 'source']) })
    .optional(),
  warnings: z.array(z.string()).optional(),
  resumed: z.boolean().optional(),
});

/** A processed texture as the textures stage leaves it: its result plus the file holding the new image. */
export const TextureWorkRecord = z.object({
  index: z.number().int(),
  /** Digest of the source image, by which packaging finds the texture again in each LOD. */
  sourceSha256: z.string(),
  file: z.string(),
  result: TextureResultSchema,
});
export type TextureWorkRecord = z.infer<typeof TextureWorkRecord>;

/** The textures stage's heartbeat checkpoint: indices of textures already written to the work folder. */
export const TexturesCheckpoint = z.object({ done: z.array(z.number().int().nonnegative()) });
export type TexturesCheckpoint = z.infer<typeof TexturesCheckpoint>;

/** The LOD stage's heartbeat checkpoint: levels already written. */
export const LodsCheckpoint = z.object({ done: z.array(z.number().int().positive()) });

const ValidatorMessageSchema = z.object({
  code: z.string(),
  message: z.string(),
  severity: z.enum(['error', 'warning', 'info', 'hint']),
  pointer: z.string().optional(),
  offset: z.number().optional(),
});

export const ValidationSummarySchema = z.object({ errors: z.number(), warnings: z.number(), messages: z.array(ValidatorMessageSchema) });

export const PackageResultSchema = z.object({
  outputs: z.array(
    z.object({
      name: z.string(),
      bytes: z.number(),
      sha256: z.string(),
      kind: z.enum(['glb', 'report']),
      level: z.number().int().optional(),
    }),
  ),
  validationErrors: z.number(),
  stats: AssetStatsSchema,
  steps: z.array(z.string()).optional(),
  notes: z.array(z.string()).optional(),
});
