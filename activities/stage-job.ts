import { z } from 'zod';
import { PipelineSettings, ValidatorMessage } from '../common/pipeline.js';
import { StageName } from '../common/stages.js';

/** Everything a stage thread needs: paths on the HPC machine's storage and the job's settings. Plain data only. */
export const StageJob = z.object({
  /** A stage of the registry (common/stages.ts); its runner is activities/stages/<stage>.ts. */
  stage: StageName,
  jobId: z.string(),
  assetName: z.string(),
  /** The .glb/.gltf among the uploaded files. */
  mainFile: z.string(),
  fileNames: z.array(z.string()),
  inputDir: z.string(),
  workDir: z.string(),
  outputDir: z.string(),
  settings: PipelineSettings,
  /** Complexity limits the upload is checked against before heavy work (HPC worker config). */
  limits: z
    .object({
      accessors: z.number(),
      nodes: z.number(),
      primitives: z.number(),
      triangles: z.number(),
      texturePixels: z.number(),
      jsonDepth: z.number(),
      nodeDepth: z.number(),
    })
    .optional(),
  /** Heartbeat checkpoint of the previous attempt, if any. */
  checkpoint: z.unknown().optional(),
});
export type StageJob = z.infer<typeof StageJob>;

/** How a stage reports progress from inside its thread. */
export interface StageProgress {
  /** Declares the stage's total work in its own unit (textures, levels, files, steps). */
  start(total: number, unit: string, message: string): void;
  update(done: number, message?: string, checkpoint?: unknown): void;
  /**
   * An external process the stage started (running) or that has exited. The activity kills the process
   * group of every running one when it terminates the thread on a cancel, which the thread cannot do itself.
   */
  process?(pid: number, running: boolean): void;
}

/** Messages a stage thread posts to the activity that started it. */
export const StageThreadMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('start'), total: z.number(), unit: z.string(), message: z.string() }),
  z.object({ type: z.literal('progress'), done: z.number(), message: z.string().optional(), checkpoint: z.unknown().optional() }),
  z.object({ type: z.literal('process'), pid: z.number().int().positive(), running: z.boolean() }),
  z.object({ type: z.literal('done'), result: z.unknown() }),
  z.object({
    type: z.literal('failed'),
    /** Failure code from common/failures.ts (INVALID_ASSET, OUTPUT_INVALID, STORAGE), or null for an unclassified error. */
    failureType: z.string().nullable(),
    message: z.string(),
    details: z.array(ValidatorMessage),
    stack: z.string().optional(),
  }),
]);
export type StageThreadMessage = z.infer<typeof StageThreadMessage>;
