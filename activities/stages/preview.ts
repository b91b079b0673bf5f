import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { PREVIEW_FILES, type PreviewResult } from '../../common/pipeline.js';
import { readWorkFile, writeFileAtomic, writeGlbAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { DEFAULT_TURNTABLE, runBlenderScript } from '../tools/blender.js';
import { workFiles } from '../work-files.js';

export const TURNTABLE_FILE = PREVIEW_FILES.turntable;
export const THUMBNAIL_FILE = PREVIEW_FILES.thumbnail;
/** Extensions Blender's glTF importer refuses (it fails the whole file) or cannot draw. */
const COMPRESSION_EXTENSIONS = ['EXT_meshopt_compression', 'KHR_draco_mesh_compression'];
const IMAGES_BLENDER_CANNOT_READ = new Set(['image/ktx2', 'image/avif']);

/**
 * The optimised GLB as Blender's importer can read it: geometry decompressed (meshopt and Draco inputs keep
 * their compression through optimize), and textures in formats it cannot decode (KTX2, AVIF) left out, so
 * the turntable shows those materials' colours instead of failing. Written beside the frames.
 */
async function blenderReadableCopy(workDir: string): Promise<string> {
  const doc = await readWorkFile(workFiles.optimized(workDir), 'optimizeAsset');
  for (const ext of doc.getRoot().listExtensionsUsed()) if (COMPRESSION_EXTENSIONS.includes(ext.extensionName)) ext.dispose();
  for (const ext of doc.getRoot().listExtensionsUsed()) if (ext.extensionName === 'KHR_texture_basisu') ext.dispose();
  for (const texture of doc.getRoot().listTextures()) if (IMAGES_BLENDER_CANNOT_READ.has(texture.getMimeType())) texture.dispose();
  const file = path.join(workFiles.turntableFrames(workDir), 'preview-input.glb');
  await writeGlbAtomic(doc, file);
  return file;
}

/** One turn in about three seconds, whatever the number of frames. */
const TURN_MS = 3000;

/**
 * A turntable of the optimised LOD0 (the optimize stage's GLB: the delivered geometry with the upload's
 * textures, which Blender reads whatever the delivered texture format) rendered by Blender with Cycles on
 * the CPU, small and with bounded samples and seconds a frame, joined into an animated WebP that loops, and
 * its first frame as a still thumbnail. A machine without Blender completes the stage without them and
 * says why: the glTF pipeline does not need Blender.
 */
export async function previewStage(job: StageJob, progress: StageProgress): Promise<PreviewResult> {
  const turntable = job.turntable ?? DEFAULT_TURNTABLE;
  if (!job.blender) {
    progress.start(1, 'steps', 'No turntable: this processing machine has no Blender');
    progress.update(1);
    return {
      rendered: false,
      note: 'No turntable: this processing machine has no Blender (an engineer can set it up: RUNBOOK.md, "Blender").',
    };
  }
  const { frames, size, samples, secondsPerFrame, threads } = turntable;
  // Blender's steps (load, then each frame) and joining the frames.
  const total = frames + 2;
  progress.start(total, 'frames', `Rendering a ${frames}-frame turntable`);
  const framesDir = workFiles.turntableFrames(job.workDir);
  await fs.rm(framesDir, { recursive: true, force: true });
  await fs.mkdir(framesDir, { recursive: true });
  const started = performance.now();
  try {
    const input = await blenderReadableCopy(job.workDir);
    await runBlenderScript(job.blender, {
      script: 'render-turntable.py',
      args: [input, framesDir, ...[frames, size, samples, secondsPerFrame, threads].map(String)],
      onProgress: (p) => progress.update(p.done, p.message),
      ...(progress.process ? { onProcess: progress.process } : {}),
    });
    const files = (await fs.readdir(framesDir)).filter((f) => f.endsWith('.png')).sort();
    if (files.length !== frames) throw new Error(`Blender wrote ${files.length} of the turntable's ${frames} frames`);
    const paths = files.map((f) => path.join(framesDir, f));
    const delay = Math.round(TURN_MS / frames);
    const animated = await sharp(paths, { join: { animated: true } })
      .webp({ quality: 80, loop: 0, delay: paths.map(() => delay) })
      .toBuffer();
    const thumbnail = await sharp(paths[0]!).webp({ quality: 85 }).toBuffer();
    await writeFileAtomic(path.join(job.outputDir, TURNTABLE_FILE), animated);
    await writeFileAtomic(path.join(job.outputDir, THUMBNAIL_FILE), thumbnail);
    progress.update(total, `Turntable of ${frames} frames, ${Math.round(animated.byteLength / 1024)} KB`);
    return {
      rendered: true,
      frames,
      size,
      samples,
      ms: Math.round(performance.now() - started),
      turntable: { name: TURNTABLE_FILE, bytes: animated.byteLength },
      thumbnail: { name: THUMBNAIL_FILE, bytes: thumbnail.byteLength },
    };
  } catch (err) {
    // The turntable is a review aid, not a deliverable: the job's LODs stand without it, and the report says
    // why it is missing. (A cancel ends the stage's thread; it never arrives here.)
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
    progress.update(total, 'No turntable: Blender could not render this asset');
    return { rendered: false, note: `No turntable: Blender could not render this asset (${reason}).` };
  } finally {
    await fs.rm(framesDir, { recursive: true, force: true });
  }
}

/** Removes the preview's frames and outputs (cancel cleanup). */
export async function discardPreview(job: Pick<StageJob, 'workDir' | 'outputDir'>): Promise<void> {
  await fs.rm(workFiles.turntableFrames(job.workDir), { recursive: true, force: true });
  if (job.outputDir) await Promise.all([TURNTABLE_FILE, THUMBNAIL_FILE].map((f) => fs.rm(path.join(job.outputDir, f), { force: true })));
}

// The stage module (activities/stage-module.ts): run in a stage thread, discard on a cancel.
export const run = previewStage;
export const discard = discardPreview;
