import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Document } from '@gltf-transform/core';
import { EXTMeshoptCompression } from '@gltf-transform/extensions';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetIO } from './asset-io.js';
import { readAssetStats } from './asset-stats.js';
import {
  digestOf,
  optimizedOriginals,
  referencedDigest,
  replaceImagesByReferences,
  sha256Hex,
  stashImages,
  writeGlbWithImages,
} from './image-refs.js';
import { validateGltfBytes } from './gltf-validation.js';
import { workFiles } from './work-files.js';
import { requestFor, runIn, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

/** The first bytes of each image format a glTF may embed, then anything. */
const imageBytes = fc
  .tuple(
    fc.constantFrom(
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      [0xff, 0xd8, 0xff],
      [0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50],
      [0xab, 0x4b, 0x54, 0x58, 0x20, 0x32, 0x30, 0xbb, 0x0d, 0x0a, 0x1a, 0x0a],
      [],
    ),
    fc.uint8Array({ minLength: 0, maxLength: 160 }),
  )
  .map(([magic, rest]) => new Uint8Array([...magic, ...rest]));

describe('image references in LOD work files', () => {
  it('tells a reference from any image, names the digest of the bytes it replaced, and replaces each image once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(imageBytes, { minLength: 1, maxLength: 6 }), async (images) => {
        const doc = new Document();
        for (const [i, image] of images.entries()) doc.createTexture(`t${i}`).setImage(image).setMimeType('image/png');
        for (const image of images) expect(referencedDigest(image)).toBeNull();
        expect(replaceImagesByReferences(doc).size).toBe(images.length);
        const textures = doc.getRoot().listTextures();
        for (const [i, texture] of textures.entries()) {
          expect(referencedDigest(texture.getImage()!)).toBe(sha256Hex(images[i]!));
          expect(digestOf(texture.getImage()!)).toBe(digestOf(images[i]!));
        }
        // Already references: nothing left to replace, and the digests stay those of the images.
        expect(replaceImagesByReferences(doc).size).toBe(0);
        expect(textures.map((t) => referencedDigest(t.getImage()!))).toEqual(images.map((image) => sha256Hex(image)));
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it('takes a reference with a corrupted digest for image data, not for a reference', () => {
    const doc = new Document();
    doc
      .createTexture('t')
      .setImage(new Uint8Array([1, 2, 3]))
      .setMimeType('image/png');
    replaceImagesByReferences(doc);
    const ref = doc.getRoot().listTextures()[0]!.getImage()!;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: ref.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), (at, byte) => {
        const changed = ref.slice();
        changed[at] = byte;
        const digest = referencedDigest(changed);
        if (byte === ref[at]) expect(digest).toBe(referencedDigest(ref));
        // A changed hex digit may still be hex: then it names another image, never this one's bytes.
        else if (digest !== null) expect(digest).not.toBe(referencedDigest(ref));
      }),
      { seed: 11, numRuns: 300 },
    );
    expect(referencedDigest(ref.subarray(0, ref.byteLength - 1))).toBeNull();
    expect(referencedDigest(new Uint8Array([...ref, 0x30]))).toBeNull();
  });
});

/** Documents with 0–5 textures of every length remainder mod 8, shared images, and meshopt views after the images. */
function generatedDocuments(seed: number, count: number): Array<[string, Document]> {
  const docs: Array<[string, Document]> = [];
  let state = seed >>> 0;
  const next = () => (state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < count; i++) {
    const doc = new Document();
    const buffer = doc.createBuffer();
    const vertices = 3 * (1 + Math.floor(next() * 13));
    const prim = doc
      .createPrimitive()
      .setAttribute(
        'POSITION',
        doc
          .createAccessor()
          .setType('VEC3')
          .setArray(new Float32Array(Array.from({ length: vertices * 3 }, next)))
          .setBuffer(buffer),
      )
      .setIndices(
        doc
          .createAccessor()
          .setArray(new Uint16Array(Array.from({ length: vertices }, (_, k) => k)))
          .setBuffer(buffer),
      );
    const images: Uint8Array[] = [];
    const textures = Math.floor(next() * 6);
    for (let t = 0; t < textures; t++) {
      const shared = images.length > 0 && next() < 0.25;
      const image = shared
        ? images[Math.floor(next() * images.length)]!
        : new Uint8Array(Array.from({ length: 1 + Math.floor(next() * 40) }, () => Math.floor(next() * 256)));
      images.push(image);
      const material = doc.createMaterial(`m${t}`).setBaseColorTexture(
        doc
          .createTexture(`t${t}`)
          .setMimeType(t % 2 ? 'image/png' : 'image/jpeg')
          .setImage(image),
      );
      if (t === 0) prim.setMaterial(material);
    }
    if (i % 3 === 2)
      doc
        .createExtension(EXTMeshoptCompression)
        .setRequired(true)
        .setEncoderOptions({ method: EXTMeshoptCompression.EncoderMethod.QUANTIZE });
    doc.createScene().addChild(doc.createNode().setMesh(doc.createMesh().addPrimitive(prim)));
    docs.push([`generated ${i} (${textures} textures${i % 3 === 2 ? ', meshopt' : ''})`, doc]);
  }
  return docs;
}

describe('the optimised GLB written with its images streamed in', () => {
  it('is byte for byte what glTF-Transform writes with the images in the document, and its stats are the same', async () => {
    const io = await assetIO();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'image-refs-'));
    try {
      const docs = generatedDocuments(23, 60);
      for (const name of ['DamagedHelmet.glb', 'chr_knight.glb', 'TwoCubes.glb', 'DenseSphere.glb'])
        docs.push([name, await io.read(path.join(SHARED_ASSETS, name))]);
      docs.push(['BoxTextured.gltf', await io.read(path.join(SHARED_ASSETS, 'BoxTextured', 'BoxTextured.gltf'))]);
      for (const [name, doc] of docs) {
        const expected = await io.writeBinary(doc);
        const stats = readAssetStats(doc, expected.byteLength);
        const stash = await stashImages(doc, dir);
        expect(
          doc
            .getRoot()
            .listTextures()
            .every((t) => referencedDigest(t.getImage()!) !== null),
          name,
        ).toBe(true);
        const file = path.join(dir, 'out.glb');
        const written = await writeGlbWithImages(doc, file, stash.read);
        expect(written, name).toBe(expected.byteLength);
        expect(Buffer.compare(await fs.readFile(file), Buffer.from(expected)), name).toBe(0);
        expect(readAssetStats(doc, written, stash.facts), name).toEqual(stats);
        await stash.remove();
      }
      expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LODs refer to the optimised model’s images; packaging puts images back', () => {
  let fx: PipelineFixture;
  beforeAll(async () => {
    fx = await startPipelineFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  /** Every image of each packaged GLB, as a consumer reads it back. */
  async function outputImages(jobId: string, names: string[]): Promise<Uint8Array[][]> {
    const io = await assetIO();
    const levels: Uint8Array[][] = [];
    for (const name of names) {
      const bytes = (await fx.outputBytes(jobId, name))!;
      expect((await validateGltfBytes(bytes, { uri: name })).errorMessages, name).toEqual([]);
      const doc = await io.readBinary(bytes);
      levels.push(
        doc
          .getRoot()
          .listTextures()
          .map((t) => t.getImage()!),
      );
    }
    return levels;
  }

  it('prunes a solid-colour texture into its factor and merges duplicate images, with the images stashed', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'image-refs-solid-'));
    try {
      const doc = new Document();
      const buffer = doc.createBuffer();
      const solid = await sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 200, g: 100, b: 50, alpha: 1 } } })
        .png()
        .toBuffer();
      const noise = await sharp(Buffer.from(Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 7919) % 256)), {
        raw: { width: 32, height: 32, channels: 3 },
      })
        .png()
        .toBuffer();
      const scene = doc.createScene();
      for (const [i, [name, bytes]] of (
        [
          ['solid', solid],
          ['noise', noise],
          ['noise-copy', noise],
        ] as const
      ).entries()) {
        const texture = doc.createTexture(name).setMimeType('image/png').setImage(new Uint8Array(bytes));
        const prim = doc
          .createPrimitive()
          .setAttribute(
            'POSITION',
            doc
              .createAccessor()
              .setType('VEC3')
              .setArray(new Float32Array([0, 0, i, 1, 0, i, 0, 1, i]))
              .setBuffer(buffer),
          )
          .setAttribute(
            'TEXCOORD_0',
            doc
              .createAccessor()
              .setType('VEC2')
              .setArray(new Float32Array([0, 0, 1, 0, 0, 1]))
              .setBuffer(buffer),
          )
          .setMaterial(doc.createMaterial(name).setBaseColorTexture(texture));
        scene.addChild(doc.createNode(name).setMesh(doc.createMesh().addPrimitive(prim)));
      }
      const io = await assetIO();
      await io.write(path.join(dir, 'Swatches.glb'), doc);
      const input = await fx.upload([path.join(dir, 'Swatches.glb')]);
      const jobId = 'asset-refs-swatches';
      const result = await runIn(fx.envFor(jobId), fx.activities.optimizeAsset, requestFor(input));
      const optimized = await io.read(workFiles.optimized(fx.checkpointDir(jobId)));
      const textures = optimized.getRoot().listTextures();
      expect(textures.map((t) => t.getName())).toEqual(['noise']);
      expect(Buffer.from(textures[0]!.getImage()!)).toEqual(noise);
      expect(result.stats.textures).toEqual([{ name: 'noise', mimeType: 'image/png', width: 32, height: 32, bytes: noise.byteLength }]);
      const [solidMaterial] = optimized
        .getRoot()
        .listMaterials()
        .filter((m) => !m.getBaseColorTexture());
      // sRGB 200, 100, 50 in linear terms.
      expect(solidMaterial!.getBaseColorFactor().map((c) => Math.round(c * 100) / 100)).toEqual([0.58, 0.13, 0.03, 1]);
      // Nothing of the stash is left in the work folder or stored.
      expect((await fs.readdir(fx.checkpointDir(jobId))).filter((f) => f.startsWith('image-'))).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    { asset: 'DamagedHelmet.glb', textures: true, olderOptimize: false },
    { asset: 'DamagedHelmet.glb', textures: false, olderOptimize: false },
    { asset: 'DamagedHelmet.glb', textures: false, olderOptimize: true },
    { asset: 'BoxTextured/BoxTextured.gltf', textures: true, olderOptimize: true },
    { asset: 'chr_knight.glb', textures: false, olderOptimize: false },
  ])('$asset, textures stage run: $textures, optimised by an older worker: $olderOptimize', async ({ asset, textures, olderOptimize }) => {
    const files = asset.includes('/')
      ? (await fs.readdir(path.join(SHARED_ASSETS, path.dirname(asset)))).map((f) => path.join(SHARED_ASSETS, path.dirname(asset), f))
      : [path.join(SHARED_ASSETS, asset)];
    const input = await fx.upload(files, { maxTextureSize: 256, lodRatios: [0.5, 0.25] });
    const jobId = `asset-refs-${path.basename(asset, path.extname(asset))}-${textures}-${olderOptimize}`;
    const env = fx.envFor(jobId);
    const request = requestFor(input);
    await runIn(env, fx.activities.optimizeAsset, request);
    const workDir = fx.checkpointDir(jobId);
    const io = await assetIO();
    const geometry = await io.read(workFiles.optimizedGeometry(workDir));
    expect(
      geometry
        .getRoot()
        .listTextures()
        .every((t) => referencedDigest(t.getImage()!) !== null),
    ).toBe(true);
    // A work folder filled before optimize wrote the geometry file: lods and package read optimized.glb instead.
    if (olderOptimize) await fs.rm(workFiles.optimizedGeometry(workDir));
    await runIn(env, fx.activities.buildLods, request);
    if (textures) await runIn(env, fx.activities.processTextures, request);
    const pkg = await runIn(env, fx.activities.packageOutputs, request);

    const optimized = await io.read(workFiles.optimized(workDir));
    const originals = optimized
      .getRoot()
      .listTextures()
      .map((t) => t.getImage()!);
    expect(originals.length).toBeGreaterThan(0);
    // The LOD work files hold a reference per image, to the optimised model's bytes, and not the bytes.
    for (const level of [1, 2]) {
      const file = workFiles.lodGlb(workDir, level);
      const lod = await io.read(file);
      const refs = lod
        .getRoot()
        .listTextures()
        .map((t) => referencedDigest(t.getImage()!));
      expect(refs.length).toBeGreaterThan(0);
      expect(refs.every((r) => r !== null && originals.some((o) => sha256Hex(o) === r))).toBe(true);
      const imageTotal = originals.reduce((n, o) => n + o.byteLength, 0);
      if (imageTotal > 100_000) expect((await fs.stat(file)).size).toBeLessThan(imageTotal);
    }

    // Each original read alone from optimized.glb by its texture's index, or found by digest when the index is off.
    const original = optimizedOriginals(workDir);
    for (const [i, image] of originals.entries()) {
      expect(await original(sha256Hex(image), i)).toEqual(image);
      expect(await original(sha256Hex(image), i + 1)).toEqual(image);
      expect(await original(sha256Hex(image))).toEqual(image);
    }
    expect(await original(sha256Hex(new Uint8Array([1, 2, 3])), 0)).toBeUndefined();

    const names = pkg.outputs.filter((o) => o.kind === 'glb').map((o) => o.name);
    expect(names).toHaveLength(3);
    const levels = await outputImages(jobId, names);
    for (const images of levels) {
      expect(images.length).toBeGreaterThan(0);
      for (const image of images) {
        expect(referencedDigest(image)).toBeNull();
        // A real, decodable image in every output.
        expect((await sharp(image).metadata()).width).toBeGreaterThan(0);
      }
      if (!textures) {
        // Nothing processed: each level carries the uploaded images, byte for byte.
        expect(images.map((i) => sha256Hex(i)).sort()).toEqual(originals.map((o) => sha256Hex(o)).sort());
      }
    }
  });
});
