import path from 'node:path';
import { z } from 'zod';
import { AssetStatsSchema, LodResult, OptimizeResult, PackageResult, TextureResult, ValidationSummary } from '../common/pipeline.js';

/**
 * Where each stage leaves its result in the job's work folder for the next stage, and the shape of what
 * it leaves. Stages run in separate activities, possibly on other machines: the work folder is the stage
 * attempt's scratch copy of the job's checkpoints in storage (activities/job-scratch.ts), and what a stage
 * writes here is stored back as checkpoints.
 */
export const workFiles = {
  inputDir: (workDir: string) => path.join(workDir, 'input'),
  inspect: (workDir: string) => path.join(workDir, 'inspect.json'),
  /** glTF-Validator's summary of the upload, written by inspect (which runs the validator first). */
  validation: (workDir: string) => path.join(workDir, 'validation.json'),
  /** What the upload carries that every output must keep (animations, skins, lights…), written by inspect. */
  inputFeatures: (workDir: string) => path.join(workDir, 'input-features.json'),
  /** The GLB Blender's import wrote from an FBX, OBJ or .blend upload: what every later stage reads as the upload. */
  importedDir: (workDir: string) => path.join(workDir, 'imported'),
  importResult: (workDir: string) => path.join(workDir, 'import.json'),
  /** The turntable's frames, rendered by Blender before they are joined into the animated WebP. */
  turntableFrames: (workDir: string) => path.join(workDir, 'turntable'),
  optimized: (workDir: string) => path.join(workDir, 'optimized.glb'),
  /**
   * optimized.glb with each image replaced by a reference to it (activities/image-refs.ts), written with it:
   * what the stages that need the geometry and not the pixels read (lods, package).
   */
  optimizedGeometry: (workDir: string) => path.join(workDir, 'optimized-geometry.glb'),
  optimizeResult: (workDir: string) => path.join(workDir, 'optimize.json'),
  lodsDir: (workDir: string) => path.join(workDir, 'lods'),
  lodGlb: (workDir: string, level: number) => path.join(workDir, 'lods', `lod${level}.glb`),
  lodResult: (workDir: string, level: number) => path.join(workDir, 'lods', `lod${level}.json`),
  texturesDir: (workDir: string) => path.join(workDir, 'textures'),
  textureResult: (workDir: string, index: number) => path.join(workDir, 'textures', `${index}.json`),
  textureImage: (workDir: string, index: number, extension: string) => path.join(workDir, 'textures', `${index}.${extension}`),
  /** A texture's smaller copy for a simplified LOD. */
  textureLodImage: (workDir: string, index: number, level: number, extension: string) =>
    path.join(workDir, 'textures', `${index}.lod${level}.${extension}`),
};

// Stage results are defined once, in common/pipeline.ts; the stages read and write them under these names.
export {
  AssetStatsSchema,
  LodResult as LodResultSchema,
  OptimizeResult as OptimizeResultSchema,
  PackageResult as PackageResultSchema,
  TextureResult as TextureResultSchema,
  ValidationSummary as ValidationSummarySchema,
};

/** A processed texture as the textures stage leaves it: its result plus the file holding the new image. */
export const TextureWorkRecord = z.object({
  index: z.number().int(),
  /** Digest of the source image, by which packaging finds the texture again in each LOD. */
  sourceSha256: z.string(),
  file: z.string(),
  result: TextureResult,
  /** The image file of each simplified LOD's smaller copy, by level (absent: the LOD shares `file`). */
  lodFiles: z.record(z.string().regex(/^\d+$/), z.string()).optional(),
});
export type TextureWorkRecord = z.infer<typeof TextureWorkRecord>;

/** The textures stage's heartbeat checkpoint: indices of textures already written to the work folder. */
export const TexturesCheckpoint = z.object({ done: z.array(z.number().int().nonnegative()) });
export type TexturesCheckpoint = z.infer<typeof TexturesCheckpoint>;

/** The LOD stage's heartbeat checkpoint: levels already written. */
export const LodsCheckpoint = z.object({ done: z.array(z.number().int().positive()) });
