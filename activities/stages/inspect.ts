import fs from 'node:fs/promises';
import path from 'node:path';
import type { AssetStats } from '../../common/jobs.js';
import { readAssetStats } from '../asset-stats.js';
import { readUpload, writeFileAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { workFiles } from '../work-files.js';

/** Reads the upload (URIs checked first, Draco decoded) and counts what the artist cares about. */
export async function inspectStage(job: StageJob, progress: StageProgress): Promise<AssetStats> {
  progress.start(2, 'steps', `Reading ${job.assetName}`);
  const doc = await readUpload(job);
  progress.update(1, 'Counting geometry and textures');
  const sizes = await Promise.all(job.fileNames.map(async (name) => (await fs.stat(path.join(job.inputDir, name))).size));
  const stats = readAssetStats(
    doc,
    sizes.reduce((sum, size) => sum + size, 0),
  );
  await writeFileAtomic(workFiles.inspect(job.workDir), JSON.stringify(stats));
  progress.update(2, `${stats.meshes} meshes, ${stats.triangles} triangles, ${stats.textures.length} textures`);
  return stats;
}
