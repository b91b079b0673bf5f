import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Document } from '@gltf-transform/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../common/pipeline.js';
import { assetIO } from './asset-io.js';
import { MAX_SMALL_TEXTURE_ERROR, measureFidelity, MIN_PSNR_DB } from './texture-fidelity.js';
import { seededRandom } from '../test/helpers/asset-corpus.js';
import { runStagesDirectly } from '../test/helpers/direct-pipeline.js';
import { SHARED_ASSETS } from '../test/helpers/pipeline-fixture.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-fidelity-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every texture's pixels in a GLB, decoded to RGBA, in texture order. */
async function texturePixels(file: string): Promise<{ width: number; height: number; data: Buffer }[]> {
  const doc = await (await assetIO()).read(file);
  return Promise.all(
    doc
      .getRoot()
      .listTextures()
      .map(async (t) => {
        const { data, info } = await sharp(t.getImage()!).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        return { width: info.width, height: info.height, data };
      }),
  );
}

/** A one-quad GLB textured with `image`. */
async function quadWith(image: Uint8Array, name: string): Promise<string> {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const position = doc
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0]))
    .setBuffer(buffer);
  const uv = doc
    .createAccessor()
    .setType('VEC2')
    .setArray(new Float32Array([0, 1, 1, 1, 1, 0, 0, 0]))
    .setBuffer(buffer);
  const indices = doc
    .createAccessor()
    .setType('SCALAR')
    .setArray(new Uint16Array([0, 1, 2, 0, 2, 3]))
    .setBuffer(buffer);
  const texture = doc.createTexture('palette').setImage(image).setMimeType('image/png');
  const prim = doc
    .createPrimitive()
    .setAttribute('POSITION', position)
    .setAttribute('TEXCOORD_0', uv)
    .setIndices(indices)
    .setMaterial(doc.createMaterial().setBaseColorTexture(texture));
  doc.createScene().addChild(doc.createNode().setMesh(doc.createMesh().addPrimitive(prim)));
  const file = path.join(work, `${name}.glb`);
  await fs.writeFile(file, await (await assetIO()).writeBinary(doc));
  return file;
}

describe('textures look the same after conversion', () => {
  it('keeps chr_knight’s 256×1 palette exact, pixel by pixel, in every LOD, and reports the figure', async () => {
    const input = path.join(SHARED_ASSETS, 'chr_knight.glb');
    const run = await runStagesDirectly(path.join(work, 'knight'), [input], resolveSettings({ preset: 'game-ready' }));
    const [source] = await texturePixels(input);
    for (const output of run.package.outputs.filter((o) => o.kind === 'glb')) {
      const [delivered] = await texturePixels(path.join(run.outputDir, output.name));
      expect({ width: delivered!.width, height: delivered!.height }).toEqual({ width: 256, height: 1 });
      expect(measureFidelity(source!.data, delivered!.data).maxChannelError, output.name).toBe(0);
    }
    const report = JSON.parse(await fs.readFile(path.join(run.outputDir, 'report.json'), 'utf8')) as {
      textures: { fidelity: { maxChannelError: number; encoding: string } }[];
    };
    expect(report.textures[0]!.fidelity).toMatchObject({ maxChannelError: 0, encoding: expect.stringMatching(/^(lossless|source)$/) });
  });

  it('never lets a small palette texture drift past the visible threshold, over seeded palettes and sizes', async () => {
    const random = seededRandom(24);
    for (let n = 0; n < 6; n++) {
      const width = 2 + Math.floor(random() * 126);
      const height = 1 + Math.floor(random() * 8);
      const colours = Array.from({ length: 4 + Math.floor(random() * 28) }, () => [0, 1, 2].map(() => Math.floor(random() * 256)));
      const pixels = Buffer.alloc(width * height * 4);
      for (let p = 0; p < width * height; p++) pixels.set([...colours[Math.floor(random() * colours.length)]!, 255], p * 4);
      const png = await sharp(pixels, { raw: { width, height, channels: 4 } })
        .png()
        .toBuffer();
      const file = await quadWith(png, `palette-${n}`);
      const run = await runStagesDirectly(path.join(work, `palette-${n}`), [file], resolveSettings({ preset: 'mobile' }));
      const [delivered] = await texturePixels(path.join(run.outputDir, run.package.outputs[0]!.name));
      const measured = measureFidelity(pixels, delivered!.data);
      expect(measured.maxChannelError, `${width}×${height}`).toBeLessThanOrEqual(MAX_SMALL_TEXTURE_ERROR);
      expect(run.textures[0]!.fidelity!.maxChannelError).toBe(measured.maxChannelError);
    }
  });

  it('keeps lossy WebP where the loss does not show, and says how close it is', async () => {
    // A smooth 512×512 gradient: lossy WebP is near-exact on it, so the small lossy file is right.
    const width = 512;
    const pixels = Buffer.alloc(width * width * 4);
    for (let y = 0; y < width; y++) for (let x = 0; x < width; x++) pixels.set([x / 2, y / 2, (x + y) / 4, 255], (y * width + x) * 4);
    const png = await sharp(pixels, { raw: { width, height: width, channels: 4 } })
      .png()
      .toBuffer();
    const run = await runStagesDirectly(
      path.join(work, 'gradient'),
      [await quadWith(png, 'gradient')],
      resolveSettings({ preset: 'game-ready' }),
    );
    expect(run.textures[0]).toMatchObject({ after: { mimeType: 'image/webp' }, fidelity: { encoding: 'lossy' } });
    expect(run.textures[0]!.fidelity!.psnrDb).toBeGreaterThanOrEqual(MIN_PSNR_DB);
    expect(run.textures[0]!.after.bytes).toBeLessThan(png.byteLength);
  });
});
