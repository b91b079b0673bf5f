import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ASSET_LIMITS } from '../common/config.js';
import { JobOptions } from '../common/jobs.js';
import { type PipelineSettings, PRESET_SETTINGS, resolveSettings } from '../common/pipeline.js';
import { type CarriedFeatures, readCarriedFeatures } from './asset-features.js';
import { assetIO } from './asset-io.js';
import { checkKtx2Images, validateGltfBytes } from './gltf-validation.js';
import { type CachedCase, cachedCorpus } from '../test/helpers/asset-corpus.js';
import { runStagesDirectly } from '../test/helpers/direct-pipeline.js';
import { requestFor, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

/**
 * Issue 17's corpus: every generated valid input completes with every preset, every output passes
 * glTF-Validator with 0 errors and carries what the input carried; every broken one fails on its first
 * attempt, non-retryable, with the validator's codes.
 */
const PRESETS = Object.keys(PRESET_SETTINGS) as (keyof typeof PRESET_SETTINGS)[];

/** Numeric features an output must have at least as many of as its input. */
const COUNTED: Exclude<keyof CarriedFeatures, 'extensions'>[] = [
  'animationChannels',
  'skins',
  'morphTargets',
  'cameras',
  'lights',
  'vertexColorSets',
  'uvSets',
  'textureTransforms',
  'unlitMaterials',
];

/** Issue 17's list, item by item, with the corpus cases that prove it (valid first, then broken). */
const ISSUE_CORPUS_ITEMS: Record<string, string[]> = {
  'every primitive mode': ['mode-points', 'mode-lines', 'mode-line-loop', 'mode-line-strip', 'mode-triangle-strip', 'mode-triangle-fan'],
  'no indices; 8/16/32-bit indices': ['no-indices', 'indices-8-bit', 'quad', 'indices-32-bit'],
  'sparse accessors; interleaved and separate buffers': ['sparse-accessor', 'quad', 'separate-vertex-buffers'],
  'multiple UV sets, vertex colours, normals/tangents absent': [
    'uv-sets-and-colors',
    'vec3-float-colors-no-normals',
    'with-tangents',
    'one-triangle',
  ],
  'quantized, meshopt and Draco input': ['quantized-input', 'meshopt-input', 'draco-input'],
  'PNG, JPEG, WebP, AVIF, KTX2 textures; samplers': [
    'textures-png-jpeg-webp',
    'texture-avif',
    'texture-ktx2',
    'texture-ktx2-external.gltf',
  ],
  'texture transforms': ['texture-transform', 'transform-texcoord-override'],
  'every KHR_materials_*, unlit': ['materials-khr-all', 'unlit'],
  'lights, cameras, skins': [
    'lights-and-cameras',
    'lights-declared-unused',
    'camera-infinite-far',
    'skin-and-animations',
    'skin-without-inverse-bind-matrices',
  ],
  'node, morph and skin animations': ['node-animation', 'skin-and-animations', 'sparse-accessor'],
  'empty nodes, multiple scenes, a scene without meshes': [
    'empty-nodes-and-scenes',
    'scene-without-meshes',
    'node-matrix-no-scene',
    'meshes-without-nodes',
    'empty-scene',
  ],
  'one triangle, a quad, deep node trees': ['one-triangle', 'quad', 'deep-node-tree'],
  'unicode names': ['multi-file-unicode.gltf', 'модель-обрезана'],
  'embedded data: URIs, percent-encoded file names': ['embedded-data-uris.gltf', 'uri-percent-encoded.gltf'],
  'broken: truncated': ['quad-truncated', 'skin-and-animations-truncated', 'textures-png-jpeg-webp-truncated', 'ktx2-truncated-image'],
  'broken: wrong lengths': ['buffer-view-too-long', 'accessor-offset-alignment'],
  'broken: bad references': ['accessor-out-of-range', 'material-bad-ref', 'node-cycle'],
  'broken: URIs that escape': ['uri-escape-0.gltf', 'uri-escape-1.gltf', 'uri-escape-2.gltf', 'uri-escape-3.gltf', 'uri-escape-4.gltf'],
  'broken: JSON bombs': ['json-depth-bomb', 'node-depth-bomb', 'not-json'],
  'broken: decompression-bomb PNGs, images that lie': ['png-decompression-bomb.gltf', 'ktx2-image-is-png'],
};

/** What a case's report must list as dropped: optional extensions glTF-Transform does not know. */
const DROPPED_BY_DESIGN: Record<string, string[]> = {
  'unknown-optional-extension': ['EXT_studio_tags'],
  'animation-pointer-optional': ['KHR_animation_pointer'],
};

let corpus: Awaited<ReturnType<typeof cachedCorpus>>;
let work: string;
beforeAll(async () => {
  corpus = await cachedCorpus();
  work = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-corpus-run-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** What a file carries, read as the pipeline reads uploads (asset.version 2.x as 2.0). */
async function featuresOf(file: string): Promise<CarriedFeatures> {
  const io = await assetIO();
  const jsonDoc = await io.readAsJSON(file);
  jsonDoc.json.asset.version = '2.0';
  return readCarriedFeatures(await io.readJSON(jsonDoc));
}

describe('valid inputs of every kind complete with every preset', () => {
  it('covers the spec’s variety', () => {
    // A guard against the corpus silently shrinking: the cases each test below runs.
    expect(corpus.valid.length).toBeGreaterThanOrEqual(40);
    expect(corpus.broken.length).toBeGreaterThanOrEqual(20);
    // Each item of issue 17's "Build a corpus of your own", and the cases that carry it.
    const missing = Object.entries(ISSUE_CORPUS_ITEMS).flatMap(([item, names]) =>
      names.filter((n) => ![...corpus.valid, ...corpus.broken].some((c) => c.name === n)).map((n) => `${item}: ${n}`),
    );
    expect(missing).toEqual([]);
  });

  it.each(PRESETS)('every valid input completes with %s, each output valid and carrying what the input carried', async (preset) => {
    const failures: string[] = [];
    for (const c of corpus.valid) {
      const outcome = await runCase(c, preset).catch((err: unknown) => `${c.name}: ${String(err)}`);
      if (typeof outcome === 'string') failures.push(outcome);
    }
    expect(failures).toEqual([]);
  });
});

/** Runs one case through the six stages and checks its outputs; returns a problem in words, or null. */
async function runCase(c: CachedCase, preset: keyof typeof PRESET_SETTINGS): Promise<string | null> {
  const main = c.files.find((f) => /\.(glb|gltf)$/.test(f))!;
  const jobDir = path.join(work, `${preset}-${path.basename(path.dirname(main))}`);
  const run = await runStagesDirectly(jobDir, c.files, resolveSettings({ preset }));
  const input = await featuresOf(main);
  const report = JSON.parse(await fs.readFile(path.join(run.outputDir, 'report.json'), 'utf8')) as {
    dropped: { feature: string; output: string }[];
  };
  const problems: string[] = [];
  const glbs = run.package.outputs.filter((o) => o.kind === 'glb');
  // A model in, a model out: meshes outside every scene or node once came out as an empty file.
  if (run.inspect.primitives > 0 && run.package.stats.primitives === 0)
    problems.push(`LOD0 has no geometry (input: ${run.inspect.primitives} primitives)`);
  if (glbs.length !== PRESET_SETTINGS[preset].lodRatios.length + 1) problems.push(`${glbs.length} GLBs`);
  for (const output of glbs) {
    const file = path.join(run.outputDir, output.name);
    const bytes = await fs.readFile(file);
    // As packaging checks it: glTF-Validator has no KTX2 reader, so KTX2 images are checked by ktx-parse.
    const images = (await (await assetIO()).readBinary(bytes))
      .getRoot()
      .listTextures()
      .map((t) => ({ mimeType: t.getMimeType(), image: t.getImage() }));
    const check = checkKtx2Images(await validateGltfBytes(bytes, { uri: output.name }), images);
    if (check.errors) problems.push(`${output.name}: ${check.errors} validator errors (${check.errorMessages[0]?.code})`);
    const carried = await featuresOf(file);
    for (const key of COUNTED) if (carried[key] < input[key]) problems.push(`${output.name}: ${key} ${input[key]} -> ${carried[key]}`);
    for (const ext of input.extensions) if (!carried.extensions.includes(ext)) problems.push(`${output.name}: lost ${ext}`);
  }
  // Only the optional extensions this pipeline does not know are dropped, and the report names them.
  const expectedDropped = DROPPED_BY_DESIGN[c.name] ?? [];
  const dropped = report.dropped.map((d) => d.feature);
  if (JSON.stringify(dropped) !== JSON.stringify(expectedDropped)) problems.push(`report.dropped ${JSON.stringify(report.dropped)}`);
  return problems.length ? `${c.name} (${preset}): ${problems.join('; ')}` : null;
}

describe('broken inputs fail on their first attempt with the validator’s codes', () => {
  let fx: PipelineFixture;
  beforeAll(async () => {
    fx = await startPipelineFixture();
  });
  afterAll(async () => fx?.stop());

  it('refuses every broken variant in inspect, non-retryable, naming a code the case expects', async () => {
    const outcomes: Record<string, unknown> = {};
    for (const c of corpus.broken) {
      const input = await fx.upload(c.files);
      const env = fx.envFor(`asset-alice-broken-${c.name.replace(/\W+/g, '-')}`);
      const err = await env.run(fx.activities.inspectAsset, requestFor(input)).then(
        () => null,
        (e: unknown) => e,
      );
      const failure = err instanceof ApplicationFailure ? err : null;
      const codes = (failure?.details ?? []).map((d) => (d as { code: string }).code);
      outcomes[c.name] = {
        nonRetryable: failure?.nonRetryable,
        artistFacing: ['INVALID_ASSET', 'UNSUPPORTED_ASSET', 'ASSET_LIMIT'].includes(failure?.type ?? ''),
        expectedCode: codes.some((code) => c.expectCodes.includes(code)),
        // No library's stack fragment in what the artist reads.
        plain: failure ? !/Cannot read properties|reading '|at .*\.ts:|\(-1\)|\.\. /.test(failure.message) : false,
      };
    }
    const ideal = { nonRetryable: true, artistFacing: true, expectedCode: true, plain: true };
    expect(outcomes).toEqual(Object.fromEntries(corpus.broken.map((c) => [c.name, ideal])));
  });

  it('refuses two uploaded files of one name and names too long for the file system, first time', async () => {
    const [a, b] = [mkdtempSync(path.join(work, 'a-')), mkdtempSync(path.join(work, 'b-'))];
    const quad = corpus.valid.find((c) => c.name === 'quad')!.files[0]!;
    const long = `${'модель'.repeat(20)}.glb`;
    for (const dir of [a, b]) await fs.copyFile(quad, path.join(dir, 'same.glb'));
    await fs.copyFile(quad, path.join(a, long)).catch(() => undefined);
    const duplicate = await fx.upload([path.join(a, 'same.glb'), path.join(b, 'same.glb')]);
    const named = { ...(await fx.upload([quad])), files: [{ ...(await fx.upload([quad])).files[0]!, name: long }] };
    for (const [input, code] of [
      [duplicate, 'DUPLICATE_FILE_NAME'],
      [named, 'FILE_NAME_TOO_LONG'],
    ] as const) {
      const err = await fx
        .envFor(`asset-alice-names-${code}`)
        .run(fx.activities.inspectAsset, requestFor(input))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'INVALID_ASSET', nonRetryable: true, details: [{ code }] });
    }
  });
});

describe('unicode names', () => {
  it('completes a 100-letter Cyrillic upload and names its outputs in Cyrillic, cut to a length every file system takes', async () => {
    const quad = corpus.valid.find((c) => c.name === 'quad')!.files[0]!;
    const dir = mkdtempSync(path.join(work, 'unicode-'));
    const name = `${'Модель'.repeat(17).slice(0, 100)}.glb`;
    await fs.copyFile(quad, path.join(dir, name));
    const run = await runStagesDirectly(path.join(work, 'unicode-run'), [path.join(dir, name)], resolveSettings({ preset: 'game-ready' }));
    const glbs = run.package.outputs.filter((o) => o.kind === 'glb').map((o) => o.name);
    expect(glbs).toHaveLength(3);
    for (const output of glbs) {
      expect(output).toMatch(/^Модель/);
      expect(Buffer.byteLength(output, 'utf8') + 41).toBeLessThanOrEqual(255);
    }
  });
});

describe('complexity limits', () => {
  it('refuses each limit, from the JSON alone, as a non-retryable ASSET_LIMIT naming its variable', async () => {
    const big = corpus.valid.find((c) => c.name === 'deep-node-tree')!;
    const textured = corpus.valid.find((c) => c.name === 'textures-png-jpeg-webp')!;
    const cases = [
      [big, { accessors: 2 }, 'TOO_MANY_ACCESSORS', 'ASSET_MAX_ACCESSORS'],
      [big, { nodes: 150 }, 'TOO_MANY_NODES', 'ASSET_MAX_NODES'],
      [big, { primitives: 0.5 }, 'TOO_MANY_PRIMITIVES', 'ASSET_MAX_PRIMITIVES'],
      [big, { triangles: 7 }, 'TOO_MANY_TRIANGLES', 'ASSET_MAX_TRIANGLES'],
      [textured, { texturePixels: 31 * 31 }, 'TEXTURE_TOO_LARGE', 'ASSET_MAX_TEXTURE_PIXELS'],
      [big, { jsonDepth: 3 }, 'JSON_TOO_DEEP', 'ASSET_MAX_JSON_DEPTH'],
      [big, { nodeDepth: 150 }, 'NODES_TOO_DEEP', 'ASSET_MAX_NODE_DEPTH'],
    ] as const;
    for (const [c, override, code, variable] of cases) {
      const err = await runStagesDirectly(path.join(work, `limit-${code}`), c.files, resolveSettings({ preset: 'archive' }), {
        ...DEFAULT_ASSET_LIMITS,
        ...override,
      }).catch((e: unknown) => e);
      expect(err, code).toMatchObject({ code: 'ASSET_LIMIT', details: [{ code }] });
      expect((err as Error).message, code).toContain(variable);
    }
  });
});

describe('the pipeline’s own outputs are valid inputs', () => {
  /** Cases whose outputs carry the most: textures of each format, skins and animations, KTX2. */
  const SOURCES = ['textures-png-jpeg-webp', 'skin-and-animations', 'texture-ktx2', 'materials-khr-all'];
  const SETTINGS: [string, PipelineSettings][] = [
    ...PRESETS.map((preset): [string, PipelineSettings] => [preset, resolveSettings({ preset })]),
    ['game-ready + ktx2', resolveSettings({ preset: 'game-ready', textureFormat: 'ktx2', maxTextureSize: 64 })],
  ];

  it.each(SETTINGS)('every output of %s, uploaded again, completes with the default preset', async (label, settings) => {
    const failures: string[] = [];
    for (const name of SOURCES) {
      const c = corpus.valid.find((v) => v.name === name)!;
      const first = await runStagesDirectly(path.join(work, `trip-${label}-${name}`.replace(/\W+/g, '-')), c.files, settings);
      for (const output of first.package.outputs.filter((o) => o.kind === 'glb')) {
        const again = await runStagesDirectly(
          path.join(work, `again-${label}-${output.name}`.replace(/\W+/g, '-')),
          [path.join(first.outputDir, output.name)],
          resolveSettings({ preset: JobOptions.parse({}).preset }),
        ).catch((err: unknown) => `${output.name} of ${label}: ${String(err)}`);
        if (typeof again === 'string') failures.push(again);
        else if (again.package.validationErrors) failures.push(`${output.name} of ${label}: ${again.package.validationErrors} errors`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('takes a KHR_texture_basisu output back, its KTX2 images checked and kept, not refused as unrecognised', async () => {
    const c = corpus.valid.find((v) => v.name === 'textures-png-jpeg-webp')!;
    const settings = resolveSettings({ preset: 'game-ready', textureFormat: 'ktx2', maxTextureSize: 32, lodRatios: [] });
    const first = await runStagesDirectly(path.join(work, 'ktx2-out'), c.files, settings);
    const lod0 = path.join(first.outputDir, first.package.outputs.find((o) => o.kind === 'glb')!.name);
    const again = await runStagesDirectly(path.join(work, 'ktx2-again'), [lod0], resolveSettings({ preset: 'game-ready' }));
    // One note per KTX2 image in place of the validator's IMAGE_UNRECOGNIZED_FORMAT, and no warning about its MIME type.
    expect(again.validate.messages.filter((m) => m.code === 'KTX2_CHECKED')).toHaveLength(3);
    expect(again.validate.messages.filter((m) => m.code === 'VALUE_NOT_IN_LIST')).toEqual([]);
    expect(again.textures.map((t) => t.after.mimeType)).toEqual(['image/ktx2', 'image/ktx2', 'image/ktx2']);
  });
});
