import fs from 'node:fs/promises';
import path from 'node:path';
import { type ImportResult } from '../../common/pipeline.js';
import { withoutModelExtension } from '../../common/model-files.js';
import { writeFileAtomic } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { BlenderUnavailableError, runBlenderScript } from '../tools/blender.js';
import { workFiles } from '../work-files.js';

/** The file name of the GLB an import writes: the upload's name with .glb for its extension. */
export function importedName(modelFile: string): string {
  return `${withoutModelExtension(modelFile)}.glb`;
}

/** Where the stages after an import find the upload: the GLB it wrote, in the job's work folder. */
export function importedUpload(modelFile: string, workDir: string): Pick<StageJob, 'inputDir' | 'mainFile' | 'fileNames'> {
  const name = importedName(modelFile);
  return { inputDir: workFiles.importedDir(workDir), mainFile: name, fileNames: [name] };
}

/**
 * An FBX, OBJ (with its MTL and textures beside it) or .blend upload becomes one GLB in the work folder,
 * written by Blender headless (activities/blender/import-to-gltf.py); every later stage reads that GLB as
 * the upload. A file Blender cannot read fails MODEL_UNREADABLE, never retried; no Blender on this
 * machine fails BLENDER_UNAVAILABLE.
 */
export async function importStage(job: StageJob, progress: StageProgress): Promise<ImportResult> {
  const format = path.extname(job.mainFile).slice(1).toLowerCase();
  if (!job.blender) throw new BlenderUnavailableError(`Importing ${job.mainFile}`);
  progress.start(4, 'steps', `Opening ${job.mainFile} in Blender`);
  const imported = importedUpload(job.mainFile, job.workDir);
  const output = path.join(imported.inputDir, imported.mainFile);
  await fs.mkdir(path.dirname(output), { recursive: true });
  const started = performance.now();
  await runBlenderScript(job.blender, {
    script: 'import-to-gltf.py',
    args: [path.join(job.inputDir, job.mainFile), output],
    onProgress: (p) => progress.update(p.done, p.message),
    ...(progress.process ? { onProcess: progress.process } : {}),
  });
  const result: ImportResult = {
    source: job.mainFile,
    format,
    glb: path.basename(output),
    bytes: (await fs.stat(output)).size,
    ms: Math.round(performance.now() - started),
    blender: job.blender.describe,
  };
  await writeFileAtomic(workFiles.importResult(job.workDir), JSON.stringify(result));
  return result;
}

/** Removes what an interrupted import may have left (a partial GLB, its result). */
export async function discardImport(workDir: string): Promise<void> {
  await fs.rm(workFiles.importedDir(workDir), { recursive: true, force: true });
  await fs.rm(workFiles.importResult(workDir), { force: true });
}

// The stage module (activities/stage-module.ts): run in a stage thread, discard on a cancel.
export const run = importStage;
export const discard = (job: StageJob) => discardImport(job.workDir);
