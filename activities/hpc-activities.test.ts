import fs from 'node:fs/promises';
import path from 'node:path';
import { ImageUtils } from '@gltf-transform/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ProcessAssetInput } from '../common/jobs.js';
import { type PipelineSettings, resolveSettings } from '../common/pipeline.js';
import { assetIO } from './asset-io.js';
import { readAssetStats } from './asset-stats.js';
import { validateGltfBytes } from './gltf-validation.js';
import { requestFor, runIn, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

/** Runs every stage in the workflow's order for one job, as the HPC worker would, timing each. */
async function runPipeline(fx: PipelineFixture, jobId: string, input: ProcessAssetInput, settings: PipelineSettings) {
  const request = requestFor(input, settings);
  const env = fx.envFor(jobId);
  const times: Record<string, number> = {};
  const timed = async <T>(stage: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      times[stage] = Math.round(performance.now() - started);
    }
  };
  const inspect = await timed('inspect', () => runIn(env, fx.activities.inspectAsset, request));
  const validation = await timed('validate', () => runIn(env, fx.activities.validateAsset, request));
  const optimize = await timed('optimize', () => runIn(env, fx.activities.optimizeAsset, request));
  const lods = await timed('lods', () => runIn(env, fx.activities.buildLods, request));
  const textures = await timed('textures', () => runIn(env, fx.activities.processTextures, request));
  const pkg = await timed('package', () => runIn(env, fx.activities.packageOutputs, request));
  return { inspect, validation, optimize, lods, textures, pkg, times };
}

/** Re-reads every delivered GLB from disk and checks it the way a consumer would. */
async function checkOutputs(
  fx: PipelineFixture,
  jobId: string,
  pkg: Awaited<ReturnType<typeof runPipeline>>['pkg'],
  maxTextureSize: number,
) {
  const io = await assetIO();
  for (const output of pkg.outputs) {
    const bytes = (await fx.outputBytes(jobId, output.name))!;
    expect(bytes, output.name).not.toBeNull();
    expect(bytes.byteLength).toBe(output.bytes);
    if (output.kind !== 'glb') continue;
    const report = await validateGltfBytes(bytes, { uri: output.name });
    expect(report.errorMessages, output.name).toEqual([]);
    const doc = await io.readBinary(bytes);
    for (const texture of doc.getRoot().listTextures()) {
      const size = ImageUtils.getSize(texture.getImage()!, texture.getMimeType());
      expect(Math.max(...size!)).toBeLessThanOrEqual(maxTextureSize);
    }
  }
}

const GltfLayoutJson = z.looseObject({
  meshes: z.array(z.object({ primitives: z.array(z.looseObject({ attributes: z.record(z.string(), z.number()), indices: z.number() })) })),
  accessors: z.array(z.looseObject({ componentType: z.number(), normalized: z.boolean().optional(), bufferView: z.number() })),
  bufferViews: z.array(
    z.looseObject({
      extensions: z.object({ EXT_meshopt_compression: z.looseObject({ mode: z.string(), filter: z.string().optional() }) }).optional(),
    }),
  ),
});

/** Per attribute (and indices) of a meshopt GLB, from its JSON: component type, normalized, meshopt mode and filter. */
function attributeLayout(glb: Uint8Array) {
  const jsonLength = new DataView(glb.buffer, glb.byteOffset).getUint32(12, true);
  const json = GltfLayoutJson.parse(JSON.parse(new TextDecoder().decode(glb.subarray(20, 20 + jsonLength))));
  const layout: Record<string, { componentType: number; normalized: boolean; mode: string; filter?: string }> = {};
  for (const prim of json.meshes.flatMap((m) => m.primitives)) {
    for (const [semantic, index] of [...Object.entries(prim.attributes), ['indices', prim.indices] as const]) {
      const accessor = json.accessors[index]!;
      const meshopt = json.bufferViews[accessor.bufferView]!.extensions?.EXT_meshopt_compression;
      layout[semantic] = {
        componentType: accessor.componentType,
        normalized: accessor.normalized ?? false,
        mode: meshopt?.mode ?? 'none',
        ...(meshopt?.filter ? { filter: meshopt.filter } : {}),
      };
    }
  }
  return layout;
}

/** True when each vertex is first referenced after all lower-numbered ones: meshopt's vertex-fetch order. */
function inFirstUseOrder(indices: ArrayLike<number>, vertexCount: number): boolean {
  let next = 0;
  for (let i = 0; i < indices.length; i++) {
    if (indices[i]! > next) return false;
    if (indices[i] === next) next++;
  }
  return next === vertexCount;
}

describe('HPC pipeline stages on the shared sample assets', () => {
  let fx: PipelineFixture;
  beforeAll(async () => {
    fx = await startPipelineFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it('turns DamagedHelmet into validated meshopt LODs at the requested ratios with WebP textures', async () => {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], {
      preset: 'game-ready',
      lodRatios: [0.5, 0.25, 0.1],
      maxTextureSize: 1024,
    });
    const settings = resolveSettings(input.options);
    const jobId = 'asset-alice-helmet';
    const run = await runPipeline(fx, jobId, input, settings);
    console.log(
      JSON.stringify({
        helmet: {
          times: run.times,
          lods: run.lods,
          outputs: run.pkg.outputs.map((o) => [o.name, o.bytes]),
          inputBytes: run.inspect.fileBytes,
        },
      }),
    );

    expect(run.inspect).toMatchObject({ meshes: 1, triangles: 15452, textures: expect.any(Array) });
    expect(run.inspect.textures).toHaveLength(5);
    expect(run.validation.errors).toBe(0);
    expect(run.optimize.steps).toEqual(['dedup', 'weld', 'prune', 'resample', 'reorder', 'quantize']);
    for (const lod of run.lods) {
      expect(Math.abs(lod.triangles - lod.targetTriangles) / lod.targetTriangles, `LOD${lod.level}`).toBeLessThanOrEqual(0.1);
    }
    expect(run.textures).toHaveLength(5);
    for (const t of run.textures) {
      expect(t.before).toMatchObject({ width: 2048, height: 2048 });
      expect(t.after).toMatchObject({ width: 1024, height: 1024, mimeType: 'image/webp' });
    }
    expect(run.pkg.outputs.map((o) => o.name)).toEqual([
      'DamagedHelmet-lod0.glb',
      'DamagedHelmet-lod1.glb',
      'DamagedHelmet-lod2.glb',
      'DamagedHelmet-lod3.glb',
      'report.json',
    ]);
    expect(run.pkg.validationErrors).toBe(0);
    expect(run.pkg.stats.extensionsUsed).toEqual(
      expect.arrayContaining(['EXT_meshopt_compression', 'EXT_texture_webp', 'KHR_mesh_quantization']),
    );
    await checkOutputs(fx, jobId, run.pkg, 1024);
    // Geometry laid out for meshopt as gltfpack lays it out (benchmark 7 compares the sizes): positions as grid
    // integers, octahedral normals, UVs (v 1.0006..1.9987 here) as 12-bit values under a texture transform,
    // and at every level the triangles in vertex-cache order with the vertices in first-use order.
    for (const output of run.pkg.outputs.filter((o) => o.kind === 'glb')) {
      const bytes = (await fx.outputBytes(jobId, output.name))!;
      expect(attributeLayout(bytes), output.name).toEqual({
        POSITION: { componentType: 5122, normalized: false, mode: 'ATTRIBUTES' },
        NORMAL: { componentType: 5120, normalized: true, mode: 'ATTRIBUTES', filter: 'OCTAHEDRAL' },
        TEXCOORD_0: { componentType: 5123, normalized: true, mode: 'ATTRIBUTES' },
        indices: { componentType: 5123, normalized: false, mode: 'TRIANGLES' },
      });
      const doc = await (await assetIO()).readBinary(bytes);
      expect(
        doc
          .getRoot()
          .listExtensionsUsed()
          .map((e) => e.extensionName),
      ).toContain('KHR_texture_transform');
      for (const prim of doc
        .getRoot()
        .listMeshes()
        .flatMap((m) => m.listPrimitives())) {
        expect(inFirstUseOrder(prim.getIndices()!.getArray()!, prim.getAttribute('POSITION')!.getCount()), output.name).toBe(true);
      }
    }
    const lod3 = await (await assetIO()).readBinary((await fx.outputBytes(jobId, 'DamagedHelmet-lod3.glb'))!);
    expect(readAssetStats(lod3, 0).triangles).toBe(run.lods[2]!.triangles);
    const report = JSON.parse((await fx.outputBytes(jobId, 'report.json'))!.toString('utf8'));
    expect(report.before.triangles).toBe(15452);
    expect(report.after.lod3.triangles).toBe(run.lods[2]!.triangles);
  });

  it('reads a multi-file .gltf upload and packages it as self-contained GLBs', async () => {
    const dir = path.join(SHARED_ASSETS, 'BoxTextured');
    const input = await fx.upload(['BoxTextured.gltf', 'BoxTextured0.bin', 'CesiumLogoFlat.png'].map((f) => path.join(dir, f)));
    const settings = resolveSettings(input.options);
    const run = await runPipeline(fx, 'asset-alice-box', input, settings);
    expect(run.inspect).toMatchObject({ meshes: 1, triangles: 12, textures: [expect.objectContaining({ mimeType: 'image/png' })] });
    expect(run.textures[0]!.after.mimeType).toBe('image/webp');
    await checkOutputs(fx, 'asset-alice-box', run.pkg, settings.maxTextureSize);

    // KTX2 through the activity and its stage thread: basisu's ETC1S for the base colour, never WebP.
    const env = fx.envFor('asset-alice-box');
    const ktx2 = await runIn(env, fx.activities.processTextures, requestFor(input, { ...settings, textureFormat: 'ktx2' }));
    expect(ktx2[0]).toMatchObject({
      after: { mimeType: 'image/ktx2', width: 256, height: 256 },
      codec: 'etc1s',
      fidelity: { encoding: 'lossy' },
    });
    // 'keep' keeps the PNG but still resizes it.
    const keep = await runIn(
      env,
      fx.activities.processTextures,
      requestFor(input, { ...settings, textureFormat: 'keep', maxTextureSize: 64 }),
    );
    expect(keep[0]).toMatchObject({
      before: { mimeType: 'image/png', width: 256 },
      after: { mimeType: 'image/png', width: 64, height: 64 },
    });
  });

  it('decodes a Draco-compressed input and can deliver Draco again', async () => {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'DenseSphere.glb')], { geometryCompression: 'draco', lodRatios: [0.5] });
    const settings = resolveSettings(input.options);
    const run = await runPipeline(fx, 'asset-alice-sphere', input, settings);
    expect(run.inspect.extensionsUsed).toContain('KHR_draco_mesh_compression');
    expect(run.inspect.triangles).toBeGreaterThan(0);
    expect(run.pkg.stats.extensionsUsed).toContain('KHR_draco_mesh_compression');
    expect(run.pkg.stats.extensionsUsed).not.toContain('EXT_meshopt_compression');
    expect(run.lods[0]!.triangles / run.lods[0]!.targetTriangles).toBeLessThanOrEqual(1.1);
    await checkOutputs(fx, 'asset-alice-sphere', run.pkg, settings.maxTextureSize);
  });

  it("gives DamagedHelmet's lower LODs proportionally smaller textures: LOD1 and LOD2 carry fewer pixels and bytes than LOD0", async () => {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], { preset: 'game-ready' });
    const settings = resolveSettings(input.options);
    expect(settings).toMatchObject({ lodRatios: [0.5, 0.25], maxTextureSize: 2048 });
    const jobId = 'asset-alice-helmet-lod-textures';
    const run = await runPipeline(fx, jobId, input, settings);

    // Each texture: LOD0 at 2048², LOD n at √ratio of its sides (pixels in proportion to triangles).
    for (const t of run.textures) {
      expect(t.after, t.name).toMatchObject({ width: 2048, height: 2048 });
      expect(t.lods, t.name).toEqual([
        { level: 1, width: 1448, height: 1448, bytes: expect.any(Number), mimeType: 'image/webp' },
        { level: 2, width: 1024, height: 1024, bytes: expect.any(Number), mimeType: 'image/webp' },
      ]);
      expect(t.lods![1]!.bytes).toBeLessThan(t.lods![0]!.bytes);
      expect(t.lods![0]!.bytes).toBeLessThan(t.after.bytes);
    }
    await checkOutputs(fx, jobId, run.pkg, 2048);

    // What each delivered GLB really embeds, read back from the published files.
    const io = await assetIO();
    const embedded = await Promise.all(
      [0, 1, 2].map(async (level) => {
        const output = run.pkg.outputs.find((o) => o.level === level)!;
        const doc = await io.readBinary((await fx.outputBytes(jobId, output.name))!);
        const images = doc
          .getRoot()
          .listTextures()
          .map((t) => ({ side: Math.max(...ImageUtils.getSize(t.getImage()!, t.getMimeType())!), bytes: t.getImage()!.byteLength }));
        return { level, glbBytes: output.bytes, sides: images.map((i) => i.side), imageBytes: images.reduce((sum, i) => sum + i.bytes, 0) };
      }),
    );
    console.log(
      JSON.stringify({ helmetLodTextures: embedded.map(({ level, glbBytes, imageBytes }) => ({ level, glbBytes, imageBytes })) }),
    );
    expect(embedded.map((e) => [...new Set(e.sides)])).toEqual([[2048], [1448], [1024]]);
    expect(embedded[1]!.imageBytes).toBeLessThan(embedded[0]!.imageBytes);
    expect(embedded[2]!.imageBytes).toBeLessThan(embedded[1]!.imageBytes);
    expect(embedded[1]!.glbBytes).toBeLessThan(embedded[0]!.glbBytes);
    expect(embedded[2]!.glbBytes).toBeLessThan(embedded[1]!.glbBytes);
    // The report lists each LOD copy beside the texture's before and after.
    const report = z
      .object({ textures: z.array(z.object({ lods: z.array(z.object({ level: z.number(), bytes: z.number() })) })) })
      .parse(JSON.parse(Buffer.from((await fx.outputBytes(jobId, 'report.json'))!).toString('utf8')));
    expect(report.textures.map((t) => t.lods.map((l) => l.level))).toEqual(run.textures.map(() => [1, 2]));
  });

  it('keeps an archive-preset TwoCubes uncompressed and unquantised, with LOD0 only', async () => {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')], { preset: 'archive' });
    const settings = resolveSettings(input.options);
    const run = await runPipeline(fx, 'asset-alice-cubes', input, settings);
    expect(run.inspect).toMatchObject({ meshes: 2, triangles: 24, vertices: 48 });
    expect(run.optimize.steps).not.toContain('quantize');
    expect(run.lods).toEqual([]);
    expect(run.pkg.outputs.map((o) => o.name)).toEqual(['TwoCubes-lod0.glb', 'report.json']);
    expect(run.pkg.stats.extensionsUsed).toEqual([]);
    expect(run.pkg.stats.triangles).toBe(24);
    await checkOutputs(fx, 'asset-alice-cubes', run.pkg, settings.maxTextureSize);
  });

  it('says which stage to run first when a stage finds no intermediate to work on', async () => {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    const failure = runIn(fx.envFor('asset-alice-out-of-order'), fx.activities.buildLods, requestFor(input));
    await expect(failure).rejects.toThrow(/optimized\.glb is missing .* run optimizeAsset first/);
    await expect(failure).rejects.not.toMatchObject({ type: 'INVALID_ASSET' });
  });

  it('cleans up a job idempotently: checkpoints gone, outputs kept or deleted as asked, scratch always empty', async () => {
    const jobId = 'asset-alice-cubes';
    const env = fx.envFor(jobId);
    // Every stage emptied its scratch folder when it ended.
    expect(await fs.readdir(fx.scratch.dir)).toEqual([]);
    expect((await fx.storage.loadCheckpoints(jobId, path.join(fx.dataDir, 'peek-1'))).length).toBeGreaterThan(0);
    await env.run(fx.activities.cleanupJob, { jobId, keepOutputs: true });
    expect(await fx.storage.loadCheckpoints(jobId, path.join(fx.dataDir, 'peek-2'))).toEqual([]);
    expect(await fx.outputBytes(jobId, 'TwoCubes-lod0.glb')).not.toBeNull();
    await env.run(fx.activities.deleteOutputs, { jobId });
    await env.run(fx.activities.deleteOutputs, { jobId });
    await env.run(fx.activities.cleanupJob, { jobId, keepOutputs: false });
    expect(await fx.storage.listOutputs(jobId)).toEqual([]);
  });
});
