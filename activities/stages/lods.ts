import fs from 'node:fs/promises';
import type { Document } from '@gltf-transform/core';
import { cloneDocument, reorder, simplify, weld } from '@gltf-transform/functions';
import { MeshoptEncoder, MeshoptSimplifier } from 'meshoptimizer';
import type { LodResult } from '../../common/pipeline.js';
import { readAssetStats } from '../asset-stats.js';
import { readJsonIfExists, writeFileAtomic, writeGlbAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { LodResultSchema, LodsCheckpoint, workFiles } from '../work-files.js';
import { readOptimizedGeometry } from '../image-refs.js';

/**
 * Error bound for the first pass, as a fraction of the mesh radius: loose enough to reach 0.25 on scanned
 * assets such as DamagedHelmet, tight enough that a mesh already at its minimum is not torn apart.
 */
const LOD_ERROR = 0.05;
/** Achieved triangles may exceed the target by this much before the permissive pass is tried. */
const TOLERANCE = 0.1;

/**
 * meshoptimizer with the Permissive flag: it may collapse across UV and normal seams, which the default
 * keeps, so that low ratios (0.1) are reached on assets cut into many UV islands.
 */
const permissiveSimplifier = {
  ...pointSafeSimplifier(),
  simplify: (...args: Parameters<typeof MeshoptSimplifier.simplify>) => {
    const [indices, positions, stride, target, error, flags = []] = args;
    return MeshoptSimplifier.simplify(indices, positions, stride, target, error, [...flags, 'Permissive']);
  },
};

/**
 * meshoptimizer's simplifier, able to simplify point clouds: glTF-Transform compacts a simplified point
 * list with compactMesh, which asserts a triangle list (a length divisible by 3) and so failed every
 * POINTS primitive. A point list is compacted here in first-use order, which is what compactMesh does.
 */
function pointSafeSimplifier() {
  return {
    ready: MeshoptSimplifier.ready,
    supported: MeshoptSimplifier.supported,
    simplify: MeshoptSimplifier.simplify.bind(MeshoptSimplifier),
    simplifyPoints: MeshoptSimplifier.simplifyPoints.bind(MeshoptSimplifier),
    compactMesh: (indices: Uint32Array): [Uint32Array, number] => {
      if (indices.length % 3 === 0) return MeshoptSimplifier.compactMesh(indices);
      let max = 0;
      for (const i of indices) max = Math.max(max, i);
      const remap = new Uint32Array(max + 1).fill(0xffffffff);
      let unique = 0;
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k]!;
        if (remap[i] === 0xffffffff) remap[i] = unique++;
        indices[k] = remap[i]!;
      }
      return [remap, unique];
    },
  };
}
const defaultSimplifier = pointSafeSimplifier();

/**
 * Builds one simplified copy of the optimised mesh per requested ratio (LOD1…n; LOD0 is the optimised mesh).
 * The optimised model is read once, with references in place of its images (activities/image-refs.ts), and
 * each level simplifies a copy of that: no level reads, copies or writes the images.
 */
export async function lodsStage(job: StageJob, progress: StageProgress): Promise<LodResult[]> {
  const ratios = job.settings.lodRatios;
  const checkpoint = LodsCheckpoint.safeParse(job.checkpoint);
  const done = new Set(checkpoint.success ? checkpoint.data.done : []);
  progress.start(ratios.length, 'levels', ratios.length ? `Building ${ratios.length} LODs` : 'No LODs requested');
  const results: LodResult[] = [];
  let source: Document | undefined;
  for (const [i, ratio] of ratios.entries()) {
    const level = i + 1;
    const kept = done.has(level) ? await readJsonIfExists(workFiles.lodResult(job.workDir, level), LodResultSchema) : null;
    if (kept && kept.ratio === ratio) {
      results.push(kept);
    } else {
      progress.update(i, `Simplifying LOD${level} to ${Math.round(ratio * 100)} %`);
      if (!source) {
        source = await readOptimizedGeometry(job.workDir);
      }
      results.push(await buildLod(job, source, level, ratio));
    }
    progress.update(level, `LOD${level}: ${results[i]!.triangles} of ${results[i]!.targetTriangles} target triangles`, {
      done: results.map((r) => r.level),
    });
  }
  return results;
}

async function buildLod(job: StageJob, source: Document, level: number, ratio: number): Promise<LodResult> {
  const sourceTriangles = readAssetStats(source, 0).triangles;
  const targetTriangles = Math.floor(sourceTriangles * ratio);
  let doc = cloneDocument(source);
  await doc.transform(weld(), simplify({ simplifier: defaultSimplifier, ratio, error: LOD_ERROR, lockBorder: false }));
  let triangles = readAssetStats(doc, 0).triangles;
  if (triangles > targetTriangles * (1 + TOLERANCE)) {
    doc = cloneDocument(source);
    await doc.transform(weld(), simplify({ simplifier: permissiveSimplifier, ratio, error: 1, lockBorder: false }));
    triangles = readAssetStats(doc, 0).triangles;
  }
  let note: string | undefined;
  if (isEmptied(doc) && sourceTriangles > 0) {
    // A card, a decal or a single triangle has no simpler form: an empty LOD would be no model at all.
    doc = cloneDocument(source);
    triangles = sourceTriangles;
    note = `LOD${level} keeps the full mesh: at ${Math.round(ratio * 100)} % it would have no geometry left.`;
  }
  // Simplification leaves the triangles in the source's order with gaps in the vertex range; meshopt's codecs
  // compress an index buffer in vertex-cache (strip) order and vertices in first-use order far better, as
  // the optimize stage does for LOD0 (gltfpack does the same after simplifying).
  await doc.transform(reorder({ encoder: MeshoptEncoder, target: 'size' }));
  await writeGlbAtomic(doc, workFiles.lodGlb(job.workDir, level));
  const result: LodResult = { level, ratio, targetTriangles, triangles, ...(note ? { note } : {}) };
  await writeFileAtomic(workFiles.lodResult(job.workDir, level), JSON.stringify(result));
  return result;
}

/** True when no mesh is left (simplification disposes of primitives it reduced to nothing). */
function isEmptied(doc: Document): boolean {
  return doc
    .getRoot()
    .listMeshes()
    .every((m) => m.listPrimitives().length === 0);
}

/** Removes every LOD of an interrupted run: a cancelled job keeps no partial levels. */
export async function discardLods(workDir: string): Promise<void> {
  await fs.rm(workFiles.lodsDir(workDir), { recursive: true, force: true });
}

// The stage module (activities/stage-module.ts).
export const run = lodsStage;
export const discard = (job: StageJob) => discardLods(job.workDir);
