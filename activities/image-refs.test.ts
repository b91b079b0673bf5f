import fs from 'node:fs/promises';
import path from 'node:path';
import { Document } from '@gltf-transform/core';
import fc from 'fast-check';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetIO } from './asset-io.js';
import { digestOf, optimizedOriginals, referencedDigest, replaceImagesByReferences, sha256Hex, withImageReferences } from './image-refs.js';
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
        // Lent out and given back: the very images, also when the use fails.
        const lent = new Document();
        for (const [i, image] of images.entries()) lent.createTexture(`t${i}`).setImage(image).setMimeType('image/png');
        const seen: (string | null)[] = [];
        return withImageReferences(lent, async () => {
          seen.push(
            ...lent
              .getRoot()
              .listTextures()
              .map((t) => referencedDigest(t.getImage()!)),
          );
          throw new Error('use failed');
        }).then(
          () => expect.unreachable(),
          (err: Error) => {
            expect(err.message).toBe('use failed');
            expect(seen).toEqual(images.map((image) => sha256Hex(image)));
            expect(
              lent
                .getRoot()
                .listTextures()
                .map((t) => t.getImage()),
            ).toEqual(images);
            lent
              .getRoot()
              .listTextures()
              .forEach((t, i) => expect(t.getImage()).toBe(images[i]));
          },
        );
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
