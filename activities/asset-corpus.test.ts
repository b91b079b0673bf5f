import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ASSET_LIMITS } from '../common/config.js';
import { PRESET_SETTINGS, resolveSettings } from '../common/pipeline.js';
import { type CarriedFeatures, readCarriedFeatures } from './asset-features.js';
import { assetIO } from './asset-io.js';
import { validateGltfBytes } from './gltf-validation.js';
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
    expect(corpus.valid.length).toBeGreaterThanOrEqual(35);
    expect(corpus.broken.length).toBeGreaterThanOrEqual(14);
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
  if (glbs.length !== PRESET_SETTINGS[preset].lodRatios.length + 1) problems.push(`${glbs.length} GLBs`);
  for (const output of glbs) {
    const file = path.join(run.outputDir, output.name);
    const check = await validateGltfBytes(await fs.readFile(file), { uri: output.name });
    if (check.errors) problems.push(`${output.name}: ${check.errors} validator errors (${check.errorMessages[0]?.code})`);
    const carried = await featuresOf(file);
    for (const key of COUNTED) if (carried[key] < input[key]) problems.push(`${output.name}: ${key} ${input[key]} -> ${carried[key]}`);
    for (const ext of input.extensions) if (!carried.extensions.includes(ext)) problems.push(`${output.name}: lost ${ext}`);
  }
  // Only the unknown optional extension is dropped, and the report says so.
  const expectedDropped = c.name === 'unknown-optional-extension' ? ['EXT_studio_tags'] : [];
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
