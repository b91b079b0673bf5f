import fs from 'node:fs/promises';
import { type Document, PropertyType, type Transform } from '@gltf-transform/core';
import { dedup, prune, reorder, resample, unpartition, weld } from '@gltf-transform/functions';
import { MeshoptEncoder } from 'meshoptimizer';
import type { OptimizeResult } from '../../common/pipeline.js';
import { readAssetStats } from '../asset-stats.js';
import { readUpload, removeTempFiles, writeFileAtomic, writeGlbAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { workFiles } from '../work-files.js';
import { quantizeGeometry } from './quantize-geometry.js';
import { type ImageStash, referencedDigest, stashImages, writeGlbWithImages } from '../image-refs.js';

/**
 * Lossless clean-up of the upload (dedup, weld, prune, resample, meshopt vertex-cache reorder) and, when the
 * settings ask, vertex quantisation. The result is the base every LOD and LOD0 are built from.
 */
export async function optimizeStage(job: StageJob, progress: StageProgress): Promise<OptimizeResult> {
  const doc = await readUpload(job);
  const placed = placeLooseContent(doc);
  fillInverseBindMatrices(doc);
  // dedup() tells duplicate images apart by their headers and bytes, so it sees them before they go; the
  // rest of it (accessors, materials, meshes, skins) runs below, in the order dedup() itself keeps.
  await doc.transform(dedup({ propertyTypes: [PropertyType.TEXTURE] }));
  // The pixels wait on disk while the geometry is cleaned: tens of MiB held instead of hundreds.
  const stash = await stashImages(doc, job.workDir);
  const steps: [string, Transform][] = [
    // A GLB holds one buffer: multi-file uploads with several .bin files are merged first.
    ...(doc.getRoot().listBuffers().length > 1 ? [['unpartition', unpartition()] as [string, Transform]] : []),
    ['dedup', dedup({ propertyTypes: [PropertyType.ACCESSOR, PropertyType.MATERIAL, PropertyType.MESH, PropertyType.SKIN] })],
    ['weld', weld()],
    ['prune', pruneOneImageAtATime(stash)],
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
  await writeGlbAtomic(doc, workFiles.optimizedGeometry(job.workDir));
  const bytes = await writeGlbWithImages(doc, workFiles.optimized(job.workDir), stash.read);
  await stash.remove();
  const result: OptimizeResult = {
    stats: readAssetStats(doc, bytes, stash.facts),
    steps: [...placed, ...steps.map(([name]) => name)],
  };
  await writeFileAtomic(workFiles.optimizeResult(job.workDir), JSON.stringify(result));
  progress.update(steps.length + 2, `${result.stats.triangles} triangles after ${result.steps.join(', ')}`);
  return result;
}

/**
 * prune() with the images stashed: its solid-colour check (a texture of one colour becomes its material's
 * factor) decodes every texture at once, 64 MiB of pixels per 4096² texture; here each is checked alone,
 * with only its own image back in the document (the check passes over the references, which do not decode).
 * Empty nodes are sockets and locators, and UV sets or colours no material uses may be used by the engine
 * (lightmaps, vertex paint): keep both.
 */
function pruneOneImageAtATime(stash: ImageStash): Transform {
  return async (doc) => {
    await doc.transform(prune({ keepLeaves: true, keepAttributes: true, keepExtras: true, keepSolidTextures: true }));
    for (const texture of doc.getRoot().listTextures()) {
      const reference = texture.getImage();
      const digest = reference ? referencedDigest(reference) : null;
      if (!reference || !digest) continue;
      texture.setImage(await stash.read(digest));
      await doc.transform(prune({ propertyTypes: [PropertyType.TEXTURE], keepExtras: true }));
      if (!texture.isDisposed()) texture.setImage(reference);
    }
  };
}

/**
 * What valid glTF may leave outside every scene, put where prune() and the writer keep it: prune() drops
 * every node outside a scene and every mesh no node uses, so a library of nodes (no scene) or of meshes (no
 * nodes) would come out empty; and a scene without nodes is written as `"nodes": []`, which glTF forbids
 * (EMPTY_ENTITY). Empty scenes go, root nodes without a scene get one, and each mesh no node uses gets a
 * node of its own name at the origin of the default scene. Returns the steps taken, for the report.
 */
function placeLooseContent(doc: Document): string[] {
  const root = doc.getRoot();
  const steps: string[] = [];
  const empty = root.listScenes().filter((scene) => scene.listChildren().length === 0);
  if (empty.length) {
    for (const scene of empty) scene.dispose();
    if (!root.getDefaultScene()) root.setDefaultScene(root.listScenes()[0] ?? null);
    steps.push('empty scenes removed');
  }
  const roots = root
    .listNodes()
    .filter((node) => node.getParentNode() === null && !root.listScenes().some((s) => s.listChildren().includes(node)));
  const orphanMeshes = root.listMeshes().filter((mesh) => !mesh.listParents().some((p) => p.propertyType === PropertyType.NODE));
  if (root.listScenes().length > 0 && orphanMeshes.length === 0) return steps;
  if (roots.length === 0 && orphanMeshes.length === 0) return steps;
  let scene = root.getDefaultScene() ?? root.listScenes()[0] ?? null;
  if (!scene) {
    scene = doc.createScene('Scene');
    for (const node of roots) scene.addChild(node);
    steps.push('scene');
  }
  root.setDefaultScene(scene);
  for (const mesh of orphanMeshes) scene.addChild(doc.createNode(mesh.getName()).setMesh(mesh));
  if (orphanMeshes.length) steps.push('meshes placed');
  return steps;
}

/**
 * A skin without inverseBindMatrices means identity matrices (glTF 2.0, 5.28); glTF-Transform's quantize()
 * assumes they are there (it clones them: "reading 'clone'" on every attempt), so they are written out.
 */
function fillInverseBindMatrices(doc: Document): void {
  const buffer = doc.getRoot().listBuffers()[0] ?? doc.createBuffer();
  for (const skin of doc.getRoot().listSkins()) {
    if (skin.getInverseBindMatrices()) continue;
    const count = skin.listJoints().length;
    const identities = new Float32Array(16 * count).map((_, i) => ((i % 16) % 5 === 0 ? 1 : 0));
    skin.setInverseBindMatrices(doc.createAccessor().setType('MAT4').setArray(identities).setBuffer(buffer));
  }
}

/** Removes what an interrupted optimize may have left. */
export async function discardOptimize(workDir: string): Promise<void> {
  await Promise.all(
    [workFiles.optimized(workDir), workFiles.optimizedGeometry(workDir), workFiles.optimizeResult(workDir)].map((f) =>
      fs.rm(f, { force: true }),
    ),
  );
  await removeTempFiles(workDir);
}

// The stage module (activities/stage-module.ts).
export const run = optimizeStage;
export const discard = (job: StageJob) => discardOptimize(job.workDir);
