import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Document } from '@gltf-transform/core';
import { afterAll, describe, expect, it } from 'vitest';
import { SHARED_ASSETS } from '../test/helpers/pipeline-fixture.js';
import { assetIO, readGltfHead, readGltfJson, writeGlbAtomic } from './asset-io.js';
import { InvalidAssetError } from './invalid-asset-error.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Seeded generator, so every run builds the same documents. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/** Documents of varied shape: no buffer at all, JSON and binary lengths on every 4-byte remainder, images. */
function generatedDocuments(): Array<[string, Document]> {
  const docs: Array<[string, Document]> = [];
  const empty = new Document();
  empty.createScene('empty');
  docs.push(['no buffer', empty]);
  const next = random(7);
  for (let i = 0; i < 12; i++) {
    const doc = new Document();
    const buffer = doc.createBuffer();
    const count = 1 + Math.floor(next() * 50);
    const positions = doc
      .createAccessor()
      .setType('VEC3')
      .setArray(new Float32Array(Array.from({ length: count * 3 }, next)))
      .setBuffer(buffer);
    const prim = doc.createPrimitive().setAttribute('POSITION', positions);
    if (i % 2)
      prim.setIndices(
        doc
          .createAccessor()
          .setArray(new Uint16Array(Array.from({ length: count }, (_, k) => k)))
          .setBuffer(buffer),
      );
    if (i % 3 === 0) {
      // An odd-length "image" (any bytes: the writer does not decode them) so the binary chunk needs padding.
      const image = doc
        .createTexture(`t${i}`)
        .setMimeType('image/png')
        .setImage(new Uint8Array(Array.from({ length: 3 + Math.floor(next() * 97) }, () => Math.floor(next() * 256))));
      prim.setMaterial(doc.createMaterial().setBaseColorTexture(image));
    }
    const node = doc.createNode(`node-${'x'.repeat(i)}`).setMesh(doc.createMesh().addPrimitive(prim));
    doc.createScene().addChild(node);
    docs.push([`generated ${i}`, doc]);
  }
  return docs;
}

describe('asset-io on real and generated assets', () => {
  it('writes a GLB byte for byte as glTF-Transform writeBinary does, without its full copies', async () => {
    const io = await assetIO();
    const docs = generatedDocuments();
    for (const name of ['DamagedHelmet.glb', 'chr_knight.glb', 'TwoCubes.glb', 'DenseSphere.glb', 'ShapeCollection.glb']) {
      docs.push([name, await io.read(path.join(SHARED_ASSETS, name))]);
    }
    for (const [name, doc] of docs) {
      const file = path.join(dir, `${name.replace(/\W/g, '_')}.glb`);
      const written = await writeGlbAtomic(doc, file);
      const expected = await io.writeBinary(doc);
      const actual = await fs.readFile(file);
      expect(written, name).toBe(expected.byteLength);
      expect(Buffer.compare(actual, Buffer.from(expected)), name).toBe(0);
    }
    expect(docs.length).toBe(18);
    // Nothing but the deliverables: no temporary file left behind.
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('reads the same head from a GLB file as from its whole bytes, and refuses broken headers alike', async () => {
    const whole = await fs.readFile(path.join(SHARED_ASSETS, 'DamagedHelmet.glb'));
    const cases: Array<[string, Buffer]> = [['intact', whole]];
    const next = random(11);
    // Truncations at random points, including inside the header and the JSON chunk.
    for (let i = 0; i < 10; i++) cases.push([`truncated ${i}`, whole.subarray(0, Math.floor(next() * Math.min(whole.byteLength, 4000)))]);
    const corrupt = (offset: number, value: number) => {
      const copy = Buffer.from(whole);
      copy.writeUInt32LE(value, offset);
      return copy;
    };
    cases.push(['wrong magic', corrupt(0, 0x12345678)]);
    cases.push(['declared length past the end', corrupt(8, whole.byteLength + 1)]);
    cases.push(['JSON chunk past the declared end', corrupt(12, whole.byteLength)]);
    cases.push(['JSON chunk of 4 GB', corrupt(12, 0xfffffff0)]);
    cases.push(['not a JSON chunk', corrupt(16, 0x004e4942)]);
    cases.push(['empty file', Buffer.alloc(0)]);
    let refused = 0;
    for (const [name, bytes] of cases) {
      const file = path.join(dir, `head-${name.replace(/\W/g, '_')}.glb`);
      await fs.writeFile(file, bytes);
      const fromBytes = settle(() => readGltfJson(bytes, 'asset.glb'));
      const fromFile = await readGltfHead(file, 'asset.glb').then(
        (head) => ({ head }),
        (err: unknown) => ({ err }),
      );
      if ('err' in fromBytes) {
        refused++;
        expect(fromBytes.err, name).toBeInstanceOf(InvalidAssetError);
        expect('err' in fromFile && (fromFile.err as Error).message, name).toBe((fromBytes.err as Error).message);
      } else {
        expect('head' in fromFile && fromFile.head, name).toEqual(fromBytes.head);
      }
    }
    // Every broken case was refused (a truncation may still hold the whole JSON chunk, but then the
    // declared length is past the end).
    expect(refused).toBe(cases.length - 1);
  });
});

function settle<T>(fn: () => T): { head: T } | { err: unknown } {
  try {
    return { head: fn() };
  } catch (err) {
    return { err };
  }
}
