import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREVIEW_FILES } from '../common/pipeline.js';
import { BUILTIN_STAGES, planStages } from '../common/stages.js';
import { waitFor } from '../scripts/lib/wait.js';
import { processAlive, processGroupAlive, provisionedBlender } from '../test/helpers/blender.js';
import {
  requestFor,
  runIn,
  SHARED_ASSETS,
  startPipelineFixture,
  TEST_TURNTABLE,
  type PipelineFixture,
} from '../test/helpers/pipeline-fixture.js';
import { validateGltfBytes } from './gltf-validation.js';
import { createHpcActivities, type HpcActivities } from './hpc-activities.js';
import type { HeartbeatDetails } from './progress-reporter.js';
import { aliveStageThreads, busyStageThreads } from './stage-thread.js';
import type { TurntableConfig } from './tools/blender.js';

const TINY = TEST_TURNTABLE;
/** Far more than the test waits for: the render is still going when the cancel comes. */
const LONG: TurntableConfig = { frames: 24, size: 128, samples: 256, secondsPerFrame: 60, threads: 1 };

/** An uploaded job's input with its plan, as the API starts it (common/stages.ts planStages). */
async function planned(fx: PipelineFixture, files: string[]) {
  const input = await fx.upload(files);
  return { ...input, plan: planStages(BUILTIN_STAGES, { preset: input.options.preset, fileNames: input.files.map((f) => f.name) }) };
}

/** Blender processes on this machine rendering into a folder under `under`, by pid (from /proc). */
function blenderRendersUnder(under: string): { pid: number; framesDir: string }[] {
  const found: { pid: number; framesDir: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const script = argv.findIndex((a) => a.endsWith('render-turntable.py'));
    const framesDir = argv[argv.indexOf('--', script) + 2];
    if (script >= 0 && framesDir?.startsWith(under)) found.push({ pid: Number(entry), framesDir });
  }
  return found;
}

describe('the Blender stages as activities', () => {
  let fx: PipelineFixture;
  const activitiesWith = (turntable: TurntableConfig): HpcActivities =>
    createHpcActivities({
      jobLog: fx.jobLog,
      storage: fx.storage,
      scratch: fx.scratch,
      progressMaxRate: 20,
      heartbeatIntervalMs: 200,
      blender: provisionedBlender(),
      turntable,
    });
  beforeAll(async () => {
    fx = await startPipelineFixture();
  });
  afterAll(() => fx?.stop());

  it('runs an OBJ job’s plan: import first, the glTF stages on its GLB, then a turntable published beside the GLBs', async () => {
    const activities = activitiesWith(TINY);
    const files = ['BoxTextured.obj', 'BoxTextured.mtl', 'CesiumLogoFlat.png'].map((f) => path.join(SHARED_ASSETS, 'BoxTexturedOBJ', f));
    const input = await planned(fx, files);
    const plan = input.plan;
    expect(plan.map((s) => s.name)).toEqual(['import', 'inspect', 'validate', 'optimize', 'lods', 'textures', 'package', 'preview']);
    const jobId = 'asset-alice-obj-plan';
    const results = new Map<string, unknown>();
    for (const stage of plan) {
      const activity = activities[stage.activity as keyof HpcActivities] as (r: ReturnType<typeof requestFor>) => Promise<unknown>;
      results.set(stage.name, await runIn(fx.envFor(jobId), activity, requestFor(input)));
    }
    expect(results.get('import')).toMatchObject({ source: 'BoxTextured.obj', format: 'obj', glb: 'BoxTextured.glb' });
    // The inspect stage read what Blender wrote: one textured box (12 triangles), its PNG embedded.
    expect(results.get('inspect')).toMatchObject({
      meshes: 1,
      triangles: 12,
      textures: [expect.objectContaining({ mimeType: 'image/png' })],
    });
    expect(results.get('preview')).toMatchObject({ rendered: true, frames: TINY.frames });
    const names = (await fx.storage.listOutputs(jobId)).map((o) => o.name);
    expect(names).toEqual(
      [
        'BoxTextured-lod0.glb',
        'BoxTextured-lod1.glb',
        'BoxTextured-lod2.glb',
        'report.json',
        ...Object.values(PREVIEW_FILES).sort(),
      ].sort(),
    );
    for (const glb of names.filter((n) => n.endsWith('.glb'))) {
      expect((await validateGltfBytes((await fx.outputBytes(jobId, glb))!, { uri: glb })).errors, glb).toBe(0);
    }
    const turntable = await sharp((await fx.outputBytes(jobId, PREVIEW_FILES.turntable))!, { animated: true }).metadata();
    expect(turntable).toMatchObject({ pages: TINY.frames, width: TINY.size });
  });

  it('fails a corrupt FBX in the import, once and for good: MODEL_UNREADABLE, not retryable', async () => {
    const activities = activitiesWith(TINY);
    const broken = path.join(fx.dataDir, 'Broken.fbx');
    writeFileSync(broken, readFileSync(path.join(SHARED_ASSETS, 'DamagedHelmet.fbx')).subarray(0, 40_000));
    const input = await planned(fx, [broken]);
    const err = await runIn(fx.envFor('asset-alice-broken-fbx'), activities.importModel, requestFor(input)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'MODEL_UNREADABLE', nonRetryable: true });
    expect((err as ApplicationFailure).message).toMatch(/^Blender cannot read Broken\.fbx: .*failed to read/);
  });

  it('leaves no Blender process when the job is cancelled during a render', async () => {
    const activities = activitiesWith(LONG);
    const input = await planned(fx, [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')]);
    const jobId = 'asset-alice-cancel-render';
    await fx.putCheckpoint(jobId, 'optimized.glb', readFileSync(path.join(SHARED_ASSETS, 'DamagedHelmet.glb')));
    const env = fx.envFor(jobId);
    const heartbeats: HeartbeatDetails<unknown>[] = [];
    env.on('heartbeat', (d: HeartbeatDetails<unknown>) => heartbeats.push(d));
    const outcome = runIn(env, activities.renderPreview, requestFor(input)).then(
      () => 'finished' as const,
      (e: unknown) => e,
    );
    // Blender is rendering: the artist has been told of its first frame, and its process is there.
    const rendered = (d: HeartbeatDetails<unknown>) => d.progress.stage === 'preview' && d.progress.message.startsWith('Rendered frame');
    const [blender] = await waitFor(
      () => {
        const found = blenderRendersUnder(fx.scratch.dir);
        return heartbeats.some(rendered) && found.length === 1 && found;
      },
      { timeoutMs: 120_000, intervalMs: 100, what: 'Blender to render its first frame' },
    );
    const [thread] = busyStageThreads();
    env.cancel();
    expect(await outcome).toBeInstanceOf(CancelledFailure);
    // The kill is a process-group SIGKILL as the thread goes: within the bound the stage promises.
    // Gone, not a zombie: the thread that spawned it reaped it before it was ended.
    await waitFor(() => !processGroupAlive(blender!.pid), { timeoutMs: 2_000, intervalMs: 50, what: 'Blender’s process group to be gone' });
    expect(processAlive(blender!.pid)).toBe(false);
    expect(blenderRendersUnder(fx.scratch.dir)).toEqual([]);
    expect(aliveStageThreads()).not.toContain(thread);
    // Nothing of the render was published.
    expect(await fx.storage.listOutputs(jobId)).toEqual([]);
    await expect(fs.readdir(fx.scratch.dir)).resolves.toEqual([]);
  });
});
