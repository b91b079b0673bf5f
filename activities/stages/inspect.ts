import fs from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_ASSET_LIMITS } from '../../common/config.js';
import type { AssetStats } from '../../common/jobs.js';
import { readCarriedFeatures } from '../asset-features.js';
import { readAssetStats } from '../asset-stats.js';
import { readUpload, writeFileAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { assertTexturesWithinLimits, validateUpload } from '../upload-check.js';
import { workFiles } from '../work-files.js';

/**
 * The upload's verdict first (limits and glTF-Validator, before any library reads it, so an invalid file
 * is told by the validator's codes), then reads it (URIs checked, Draco decoded) and counts what the
 * artist cares about.
 */
export async function inspectStage(job: StageJob, progress: StageProgress): Promise<AssetStats> {
  progress.start(3, 'steps', `Validating ${job.assetName}`);
  const validation = await validateUpload(job);
  await writeFileAtomic(workFiles.validation(job.workDir), JSON.stringify(validation));
  progress.update(1, `Reading ${job.assetName}`);
  const doc = await readUpload(job);
  assertTexturesWithinLimits(doc, job.limits ?? DEFAULT_ASSET_LIMITS, job.mainFile);
  progress.update(2, 'Counting geometry and textures');
  const sizes = await Promise.all(job.fileNames.map(async (name) => (await fs.stat(path.join(job.inputDir, name))).size));
  const stats = readAssetStats(
    doc,
    sizes.reduce((sum, size) => sum + size, 0),
  );
  await writeFileAtomic(workFiles.inputFeatures(job.workDir), JSON.stringify(readCarriedFeatures(doc)));
  await writeFileAtomic(workFiles.inspect(job.workDir), JSON.stringify(stats));
  progress.update(3, `${stats.meshes} meshes, ${stats.triangles} triangles, ${stats.textures.length} textures`);
  return stats;
}

// The stage module (activities/stage-module.ts). Inspect writes only work files that cleanupJob removes.
export const run = inspectStage;
