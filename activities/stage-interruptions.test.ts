import fs from 'node:fs/promises';
import path from 'node:path';
import { NodeIO } from '@gltf-transform/core';
import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessAssetInput } from '../common/jobs.js';
import { resolveSettings } from '../common/pipeline.js';
import type { HeartbeatDetails } from './progress-reporter.js';
import { aliveStageThreads, busyStageThreads } from './stage-thread.js';
import { requestFor, runIn, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';
import { denseGrid } from '../test/helpers/dense-grid.js';
import { workFiles } from './work-files.js';

/** Resolves with the first heartbeat that matches. */
function heartbeatWhere(
  env: ReturnType<PipelineFixture['envFor']>,
  match: (d: HeartbeatDetails<unknown>) => boolean,
): Promise<HeartbeatDetails<unknown>> {
  return new Promise((resolve) => {
    const listener = (details: HeartbeatDetails<unknown>) => {
      if (!match(details)) return;
      env.off('heartbeat', listener);
      resolve(details);
    };
    env.on('heartbeat', listener);
  });
}

describe('stages interrupted by retries and cancellation', () => {
  let fx: PipelineFixture;
  let helmet: ProcessAssetInput;
  const helmetJob = 'asset-alice-helmet-resume';
  beforeAll(async () => {
    fx = await startPipelineFixture();
    helmet = await fx.upload([path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], { maxTextureSize: 256 });
    await runIn(fx.envFor(helmetJob), fx.activities.optimizeAsset, requestFor(helmet));
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it('checkpoints each finished texture and skips them when the activity is retried', async () => {
    const first = fx.envFor(helmetJob);
    const checkpoints: unknown[] = [];
    first.on('heartbeat', (d: HeartbeatDetails<unknown>) => {
      if (d.checkpoint !== undefined) checkpoints.push(d.checkpoint);
    });
    const results = await runIn(first, fx.activities.processTextures, requestFor(helmet));
    expect(results).toHaveLength(5);
    expect(results.every((r) => !r.resumed && r.after.width <= 256)).toBe(true);
    expect(checkpoints.at(-1)).toEqual({ done: [0, 1, 2, 3, 4] });
    expect(checkpoints).toContainEqual({ done: [0, 1] });

    // The retry is told (through heartbeatDetails) that the first two were done before the worker died.
    const workDir = fx.checkpointDir(helmetJob);
    const mtimes = async () => Promise.all([0, 1, 2, 3, 4].map(async (i) => (await fs.stat(workFiles.textureResult(workDir, i))).mtimeMs));
    const before = await mtimes();
    const retry = fx.envFor(helmetJob, {
      progress: { stage: 'textures', done: 2, total: 5, unit: 'textures', message: '' },
      checkpoint: { done: [0, 1] },
    });
    const firstHeartbeat = heartbeatWhere(retry, () => true);
    const resumed = await runIn(retry, fx.activities.processTextures, requestFor(helmet));
    expect((await firstHeartbeat).checkpoint).toEqual({ done: [0, 1] });
    expect(resumed.map((r) => Boolean(r.resumed))).toEqual([true, true, false, false, false]);
    expect(resumed.map((r) => r.after)).toEqual(results.map((r) => r.after));
    const after = await mtimes();
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    for (const i of [2, 3, 4]) expect(after[i]).toBeGreaterThan(before[i]!);
  });

  it('keeps LODs a previous attempt finished and builds only the rest', async () => {
    const workDir = fx.checkpointDir(helmetJob);
    const first = await runIn(fx.envFor(helmetJob), fx.activities.buildLods, requestFor(helmet));
    const lod1Written = (await fs.stat(workFiles.lodGlb(workDir, 1))).mtimeMs;
    const lod2Written = (await fs.stat(workFiles.lodGlb(workDir, 2))).mtimeMs;
    const retry = fx.envFor(helmetJob, {
      progress: { stage: 'lods', done: 1, total: 2, unit: 'levels', message: '' },
      checkpoint: { done: [1] },
    });
    expect(await runIn(retry, fx.activities.buildLods, requestFor(helmet))).toEqual(first);
    expect((await fs.stat(workFiles.lodGlb(workDir, 1))).mtimeMs).toBe(lod1Written);
    expect((await fs.stat(workFiles.lodGlb(workDir, 2))).mtimeMs).toBeGreaterThan(lod2Written);
  });

  it('keeps finished textures for the retry when the attempt times out instead of being cancelled', async () => {
    const jobId = 'asset-alice-helmet-timeout';
    const workDir = fx.checkpointDir(jobId);
    await fx.putCheckpoint(jobId, 'optimized.glb', await fs.readFile(workFiles.optimized(fx.checkpointDir(helmetJob))));
    const env = fx.envFor(jobId);
    const firstDone = heartbeatWhere(env, (d) => JSON.stringify(d.checkpoint) === JSON.stringify({ done: [0] }));
    // Full-size WebP at quality 100: seconds per texture, so the timeout lands while the second is being encoded.
    const settings = { ...resolveSettings(helmet.options), maxTextureSize: 2048, textureQuality: 100 };
    const outcome = runIn(env, fx.activities.processTextures, requestFor(helmet, settings)).then(
      () => 'finished' as const,
      (err: unknown) => err,
    );
    await firstDone;
    env.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true }));
    expect(await outcome).toBeInstanceOf(CancelledFailure);
    const left = await fs.readdir(workFiles.texturesDir(workDir));
    expect(left).toContain('0.json');
    expect(left.filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('stops the simplification thread at once when cancelled, keeps heartbeating until then, and leaves no partial LODs', async () => {
    const jobId = 'asset-alice-dense-cancel';
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')], { lodRatios: [0.5, 0.25, 0.1] });
    const workDir = fx.checkpointDir(jobId);
    // About 2M triangles: simplifying them outlasts the three heartbeats (one a second) the test waits for,
    // even on an idle machine.
    await fx.putCheckpoint(jobId, 'optimized.glb', Buffer.from(await new NodeIO().writeBinary(denseGrid(1000))));

    const env = fx.envFor(jobId);
    const simplifying = heartbeatWhere(env, (d) => d.progress.stage === 'lods' && d.progress.message.startsWith('Simplifying'));
    const run = runIn(env, fx.activities.buildLods, requestFor(input, resolveSettings(input.options)));
    const outcome = run.then(
      () => 'finished' as const,
      (err: unknown) => err,
    );
    await simplifying;
    const [simplifier] = busyStageThreads();
    expect(simplifier).toBeDefined();
    // Heartbeats keep flowing while the thread is busy: the activity's event loop is free.
    await heartbeatWhere(env, () => true);
    await heartbeatWhere(env, () => true);

    const cancelledAt = performance.now();
    env.cancel();
    const err = await outcome;
    const stopMs = Math.round(performance.now() - cancelledAt);
    console.log(JSON.stringify({ cancelToThreadGoneMs: stopMs }));
    expect(err).toBeInstanceOf(CancelledFailure);
    expect(aliveStageThreads()).not.toContain(simplifier);
    expect(busyStageThreads()).toEqual([]);
    await expect(fs.stat(workFiles.lodsDir(workDir))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.readdir(fx.scratch.dir)).toEqual([]);
  });
});
