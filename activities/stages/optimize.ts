import fs from 'node:fs/promises';
import type { Document, Transform } from '@gltf-transform/core';
import { dedup, prune, reorder, resample, unpartition, weld } from '@gltf-transform/functions';
import { MeshoptEncoder } from 'meshoptimizer';
import type { OptimizeResult } from '../../common/pipeline.js';
import { readAssetStats } from '../asset-stats.js';
import { readUpload, removeTempFiles, writeFileAtomic, writeGlbAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { workFiles } from '../work-files.js';
import { quantizeGeometry } from './quantize-geometry.js';

/**
 * Lossless clean-up of the upload (dedup, weld, prune, resample, meshopt vertex-cache reorder) and, when the
 * settings ask, vertex quantisation. The result is the base every LOD and LOD0 are built from.
 */
export async function optimizeStage(job: StageJob, progress: StageProgress): Promise<OptimizeResult> {
  const doc = await readUpload(job);
  const sceneAdded = addSceneIfNone(doc);
  const steps: [string, Transform][] = [
    // A GLB holds one buffer: multi-file uploads with several .bin files are merged first.
    ...(doc.getRoot().listBuffers().length > 1 ? [['unpartition', unpartition()] as [string, Transform]] : []),
    ['dedup', dedup()],
    ['weld', weld()],
    // Empty nodes are sockets and locators, and UV sets or colours no material uses may be used by the
    // engine (lightmaps, vertex paint): keep both.
    ['prune', prune({ keepLeaves: true, keepAttributes: true, keepExtras: true })],
    ['resample', resample()],
    ['reorder', reorder({ encoder: MeshoptEncoder, target: 'size' })],
    ...(job.settings.quantize
      ? [['quantize', quantizeGeometry({ meshoptFilters: job.settings.geometryCompression === 'meshopt' })] as [string, Transform]]
      : []),
  ];
  progress.start(steps.length + 2, 'steps', `Optimising ${job.assetName}`);
  progress.update(1, 'Read the upload');
  for (const [i, [name, transform]] of steps.entries()) {
    await doc.transform(transform);
    progress.update(i + 2, `Applied ${name}`);
  }
  const file = workFiles.optimized(job.workDir);
  const bytes = await writeGlbAtomic(doc, file);
  const result: OptimizeResult = {
    stats: readAssetStats(doc, bytes),
    steps: [...(sceneAdded ? ['scene'] : []), ...steps.map(([name]) => name)],
  };
  await writeFileAtomic(workFiles.optimizeResult(job.workDir), JSON.stringify(result));
  progress.update(steps.length + 2, `${result.stats.triangles} triangles after ${result.steps.join(', ')}`);
  return result;
}

/**
 * A file with no scene is valid glTF (a library of nodes), but prune() drops every node outside a scene,
 * so its whole model would vanish: such nodes are put in a scene of their own, which is what viewers show.
 */
function addSceneIfNone(doc: Document): boolean {
  const root = doc.getRoot();
  if (root.listScenes().length > 0) return false;
  const roots = root.listNodes().filter((node) => node.getParentNode() === null);
  if (roots.length === 0) return false;
  const scene = doc.createScene('Scene');
  for (const node of roots) scene.addChild(node);
  root.setDefaultScene(scene);
  return true;
}

/** Removes what an interrupted optimize may have left. */
export async function discardOptimize(workDir: string): Promise<void> {
  await Promise.all([workFiles.optimized(workDir), workFiles.optimizeResult(workDir)].map((f) => fs.rm(f, { force: true })));
  await removeTempFiles(workDir);
}

// The stage module (activities/stage-module.ts).
export const run = optimizeStage;
export const discard = (job: StageJob) => discardOptimize(job.workDir);
