import fs from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../common/pipeline.js';
import { validateGltfBytes } from '../gltf-validation.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { BlenderUnavailableError, type TurntableConfig } from '../tools/blender.js';
import { provisionedBlender } from '../../test/helpers/blender.js';
import { runStagesDirectly } from '../../test/helpers/direct-pipeline.js';
import { SHARED_ASSETS } from '../../test/helpers/upload.js';
import { importStage } from './import.js';
import { previewStage, THUMBNAIL_FILE, TURNTABLE_FILE } from './preview.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'blender-stages-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
/** Tiny on purpose: the machine's two cores are shared (PREVIEW_* in production are larger). */
const TINY: TurntableConfig = { frames: 4, size: 64, samples: 1, secondsPerFrame: 10, threads: 1 };
const SAMPLES = [
  { name: 'DamagedHelmet.fbx', files: [path.join(SHARED_ASSETS, 'DamagedHelmet.fbx')], textures: 3 },
  {
    name: 'BoxTextured.obj',
    files: ['BoxTextured.obj', 'BoxTextured.mtl', 'CesiumLogoFlat.png'].map((f) => path.join(SHARED_ASSETS, 'BoxTexturedOBJ', f)),
    textures: 1,
  },
  { name: 'BoxTextured.blend', files: [path.join(SHARED_ASSETS, 'BoxTextured.blend')], textures: 1 },
];

function recorder(): StageProgress & { seen: number[]; pids: number[] } {
  const seen: number[] = [];
  const pids: number[] = [];
  return { seen, pids, start: () => {}, update: (done) => seen.push(done), process: (pid, running) => running && pids.push(pid) };
}

async function jobFor(name: string, files: string[], stage: StageJob['stage'] = 'inspect'): Promise<StageJob> {
  const workDir = await fs.mkdtemp(path.join(root, 'job-'));
  const inputDir = path.join(workDir, 'input');
  await fs.mkdir(inputDir);
  await Promise.all(files.map((f) => fs.copyFile(f, path.join(inputDir, path.basename(f)))));
  const outputDir = path.join(workDir, 'output');
  await fs.mkdir(outputDir);
  return {
    stage,
    jobId: `asset-alice-${path.basename(workDir)}`,
    assetName: name,
    mainFile: name,
    fileNames: files.map((f) => path.basename(f)),
    inputDir,
    workDir,
    outputDir,
    settings: resolveSettings({ preset: 'game-ready' }),
    blender: provisionedBlender(),
    turntable: TINY,
  };
}

describe('Blender stages on the real samples', () => {
  it.each(SAMPLES)('$name becomes valid glTF with its textures, goes through the pipeline, and gets a turntable', async (sample) => {
    const job = await jobFor(sample.name, sample.files);
    const progress = recorder();
    const imported = await importStage(job, progress);
    expect(progress.seen).toEqual([1, 2, 3, 4]);
    expect(progress.pids).toHaveLength(1);
    expect(imported).toMatchObject({
      source: sample.name,
      format: path.extname(sample.name).slice(1),
      glb: sample.name.replace(/\.\w+$/, '.glb'),
    });
    const glb = path.join(job.workDir, 'imported', imported.glb);
    const validation = await validateGltfBytes(await fs.readFile(glb), { uri: imported.glb });
    expect(validation.errors).toBe(0);

    // The usual pipeline on what the import wrote; packaging validates every output.
    const run = await runStagesDirectly(path.join(job.workDir, 'pipeline'), [glb], job.settings);
    expect(run.inspect.textures).toHaveLength(sample.textures);
    expect(run.inspect.triangles).toBeGreaterThan(0);
    expect(run.package.validationErrors).toBe(0);

    const preview = await previewStage({ ...job, workDir: path.join(job.workDir, 'pipeline'), outputDir: run.outputDir }, recorder());
    expect(preview).toMatchObject({ rendered: true, frames: TINY.frames, size: TINY.size });
    const turntable = await sharp(path.join(run.outputDir, TURNTABLE_FILE), { animated: true }).metadata();
    expect(turntable).toMatchObject({ format: 'webp', pages: TINY.frames, width: TINY.size, pageHeight: TINY.size, loop: 0 });
    const thumbnail = await sharp(path.join(run.outputDir, THUMBNAIL_FILE)).metadata();
    expect(thumbnail).toMatchObject({ format: 'webp', width: TINY.size, height: TINY.size });
    expect(thumbnail.pages ?? 1).toBe(1);
    // The frames are gone once joined.
    await expect(fs.readdir(path.join(job.workDir, 'pipeline', 'turntable'))).rejects.toThrow(/ENOENT/);
  });

  it('fails clearly without Blender: an import cannot run, a preview says why it has no turntable', async () => {
    const job = { ...(await jobFor('DamagedHelmet.fbx', SAMPLES[0]!.files)), blender: null };
    await expect(importStage(job, recorder())).rejects.toBeInstanceOf(BlenderUnavailableError);
    await expect(importStage(job, recorder())).rejects.toThrow(/needs Blender.*BLENDER_PATH/);
    const preview = await previewStage(job, recorder());
    expect(preview).toMatchObject({ rendered: false, note: expect.stringMatching(/no Blender/) });
    expect(await fs.readdir(job.outputDir)).toEqual([]);
  });
});
