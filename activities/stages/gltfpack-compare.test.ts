import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFor, runIn, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../../test/helpers/pipeline-fixture.js';

describe('package stage with compareWithGltfpack', () => {
  let fx: PipelineFixture;
  beforeAll(async () => {
    fx = await startPipelineFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it('runs the real gltfpack beside the built-in pipeline and reports both sizes, keeping only the deliverables', async () => {
    const jobId = 'asset-alice-gltfpack-compare';
    const input = await fx.upload([path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], { preset: 'mobile', compareWithGltfpack: true });
    const request = requestFor(input);
    const env = fx.envFor(jobId);
    await runIn(env, fx.activities.optimizeAsset, request);
    await runIn(env, fx.activities.buildLods, request);
    await runIn(env, fx.activities.processTextures, request);
    const packaged = await runIn(env, fx.activities.packageOutputs, request);

    const lod0 = packaged.outputs.find((o) => o.level === 0)!;
    expect(packaged.gltfpack).toMatchObject({ builtinBytes: lod0.bytes });
    expect(packaged.gltfpack!.bytes).toBeGreaterThan(0);
    expect(packaged.gltfpack!.ratio).toBeCloseTo(packaged.gltfpack!.bytes / lod0.bytes, 2);
    // The mobile preset's geometry settings: meshopt compression with quantisation.
    expect(packaged.gltfpack!.args).toEqual(['-v', '-i', 'DamagedHelmet.glb', '-o', 'gltfpack.glb', '-cc']);
    // The helmet's five JPEG textures, kept by gltfpack as uploaded.
    expect(packaged.gltfpack!.imageBytes).toBeGreaterThan(3_000_000);
    // gltfpack's file is a yardstick, not a deliverable: not in the outputs, not left in the work folder.
    expect(packaged.outputs.map((o) => o.name).some((n) => n.includes('gltfpack'))).toBe(false);
    expect(existsSync(path.join(fx.dataDir, 'work', jobId, 'gltfpack.glb'))).toBe(false);
  });
});
