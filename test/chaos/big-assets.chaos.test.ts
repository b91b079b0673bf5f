import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESET_SETTINGS, resolveSettings } from '../../common/pipeline.js';
import { assetIO } from '../../activities/asset-io.js';
import { validateGltfBytes } from '../../activities/gltf-validation.js';
import { denseGrid } from '../helpers/dense-grid.js';
import { runStagesDirectly } from '../helpers/direct-pipeline.js';

/** Issue 17's big cases, too slow for npm test: a million-triangle mesh, and a million-accessor file. */
let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-big-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('big assets', () => {
  it('turns a 1,000,000-triangle mesh into valid outputs with every preset', async () => {
    const file = path.join(work, 'million.glb');
    await fs.writeFile(file, await (await assetIO()).writeBinary(denseGrid(708)));
    for (const preset of Object.keys(PRESET_SETTINGS) as (keyof typeof PRESET_SETTINGS)[]) {
      const run = await runStagesDirectly(path.join(work, preset), [file], resolveSettings({ preset }));
      expect(run.inspect.triangles).toBeGreaterThanOrEqual(1_000_000);
      for (const output of run.package.outputs.filter((o) => o.kind === 'glb')) {
        const check = await validateGltfBytes(await fs.readFile(path.join(run.outputDir, output.name)), { uri: output.name });
        expect(check.errors, `${preset} ${output.name}`).toBe(0);
      }
    }
  });

  it('refuses a 1,000,000-accessor file from its JSON, before the validator or any reader holds it', async () => {
    // 64 MB of JSON that held an HPC slot for ten minutes at 3.3 GB before the limits existed.
    const accessor = '{"componentType":5126,"count":1,"type":"SCALAR"}';
    const json = `{"asset":{"version":"2.0"},"accessors":[${Array.from({ length: 1_000_000 }, () => accessor).join(',')}]}`;
    const file = path.join(work, 'accessors.gltf');
    await fs.writeFile(file, json);
    const err = await runStagesDirectly(path.join(work, 'accessors'), [file], resolveSettings({ preset: 'game-ready' })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ASSET_LIMIT', details: [{ code: 'TOO_MANY_ACCESSORS' }] });
  });
});
