import { mkdtempSync, rmSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../common/pipeline.js';
import { runStagesDirectly } from '../test/helpers/direct-pipeline.js';
import { SHARED_ASSETS } from '../test/helpers/pipeline-fixture.js';
import { validateUpload } from './upload-check.js';

/** Issue 24 items 5 and 7: what the report says about the sample assets is what happened. */
let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-honest-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** validateUpload on the sample files in place (it only reads them). */
async function verdictOn(dir: string, mainFile: string) {
  return validateUpload({ assetName: mainFile, mainFile, inputDir: dir, fileNames: await fs.readdir(dir) });
}

describe('the report tells what happened', () => {
  it('delivers DenseSphere (Draco) no larger than its upload, says it kept Draco, and does not call Draco unsupported', async () => {
    const input = path.join(SHARED_ASSETS, 'DenseSphere.glb');
    const run = await runStagesDirectly(path.join(work, 'sphere'), [input], resolveSettings({ preset: 'game-ready' }));
    const lod0 = run.package.outputs.find((o) => o.level === 0)!;
    expect(lod0.bytes).toBeLessThanOrEqual(statSync(input).size);
    expect(run.package.notes?.find((n) => n.startsWith(lod0.name))).toMatch(/kept Draco compression/);
    expect(run.package.steps).toContain('draco');
    expect(run.validate.messages.map((m) => m.code)).not.toContain('UNSUPPORTED_EXTENSION');
  });

  it('says why when an output is larger than its upload', async () => {
    // Archive asks for uncompressed geometry: DenseSphere's LOD0 outgrows its Draco upload, and the report says why.
    const input = path.join(SHARED_ASSETS, 'DenseSphere.glb');
    const run = await runStagesDirectly(path.join(work, 'sphere-archive'), [input], resolveSettings({ preset: 'archive' }));
    const lod0 = run.package.outputs.find((o) => o.level === 0)!;
    expect(lod0.bytes).toBeGreaterThan(statSync(input).size);
    expect(run.package.notes?.find((n) => n.startsWith(lod0.name))).toMatch(/larger than the upload.*uncompressed geometry/);
  });

  it('gives BoxTextured and DamagedHelmet no warning for what the pipeline handles (image metadata, generated tangents)', async () => {
    const box = await verdictOn(path.join(SHARED_ASSETS, 'BoxTextured'), 'BoxTextured.gltf');
    const helmet = await verdictOn(SHARED_ASSETS, 'DamagedHelmet.glb');
    for (const verdict of [box, helmet]) {
      expect(verdict.warnings).toBe(0);
      expect(verdict.messages.filter((m) => m.severity === 'warning' || m.severity === 'error')).toEqual([]);
    }
    // Still told, as notes.
    expect(box.messages).toContainEqual(expect.objectContaining({ code: 'IMAGE_FEATURES_UNSUPPORTED', severity: 'info' }));
    expect(helmet.messages).toContainEqual(expect.objectContaining({ code: 'MESH_PRIMITIVE_GENERATED_TANGENT_SPACE', severity: 'info' }));
  });
});
