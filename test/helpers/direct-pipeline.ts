import fs from 'node:fs/promises';
import path from 'node:path';
import type { AssetLimits } from '../../common/config.js';
import type { AssetStats } from '../../common/jobs.js';
import type {
  LodResult,
  OptimizeResult,
  PackageResult,
  PipelineSettings,
  TextureResult,
  ValidationSummary,
} from '../../common/pipeline.js';
import type { BuiltinStageName } from '../../common/stages.js';
import type { StageJob, StageProgress } from '../../activities/stage-job.js';
import { inspectStage } from '../../activities/stages/inspect.js';
import { lodsStage } from '../../activities/stages/lods.js';
import { optimizeStage } from '../../activities/stages/optimize.js';
import { packageStage } from '../../activities/stages/package.js';
import { texturesStage } from '../../activities/stages/textures.js';
import { validateStage } from '../../activities/stages/validate.js';

/** What the six stages returned for one job run in-process. */
export interface DirectRun {
  inspect: AssetStats;
  validate: ValidationSummary;
  optimize: OptimizeResult;
  lods: LodResult[];
  textures: TextureResult[];
  package: PackageResult;
  outputDir: string;
}

const QUIET: StageProgress = { start: () => {}, update: () => {} };

/**
 * Runs the six stage functions in order in this process, as the stage threads would, on files already laid
 * out in `jobDir/input`. For corpus tests that prove the compute on many inputs: the activity wrapper,
 * threads and Temporal are proven elsewhere (hpc-activities.test.ts) and would only add seconds per case.
 */
export async function runStagesDirectly(
  jobDir: string,
  files: string[],
  settings: PipelineSettings,
  limits?: AssetLimits,
): Promise<DirectRun> {
  const inputDir = path.join(jobDir, 'input');
  await fs.mkdir(inputDir, { recursive: true });
  await Promise.all(files.map((f) => fs.copyFile(f, path.join(inputDir, path.basename(f)))));
  const fileNames = files.map((f) => path.basename(f));
  const mainFile = fileNames.find((n) => /\.(glb|gltf)$/i.test(n))!;
  const outputDir = path.join(jobDir, 'output');
  const job = (stage: BuiltinStageName): StageJob => ({
    stage,
    jobId: `asset-corpus-${path.basename(jobDir)}`,
    assetName: mainFile,
    mainFile,
    fileNames,
    inputDir,
    workDir: jobDir,
    outputDir: stage === 'package' ? outputDir : '',
    settings,
    ...(limits ? { limits } : {}),
  });
  await fs.mkdir(outputDir, { recursive: true });
  const inspect = await inspectStage(job('inspect'), QUIET);
  const validate = await validateStage(job('validate'), QUIET);
  const optimize = await optimizeStage(job('optimize'), QUIET);
  const lods = await lodsStage(job('lods'), QUIET);
  const textures = await texturesStage(job('textures'), QUIET);
  return { inspect, validate, optimize, lods, textures, package: await packageStage(job('package'), QUIET), outputDir };
}
