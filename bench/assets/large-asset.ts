import { createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Document, NodeIO, type Texture } from '@gltf-transform/core';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../../common/config.js';
import { fillXorshift, seededRandom } from './seeded-random.js';

/** Generated inputs live here (git-ignored) and are reused by later runs. */
export const BENCH_CACHE = path.join(PROJECT_ROOT, 'bench', '.cache');
/** Bump when the generator's output changes, so stale cached files are not reused. */
const GENERATOR_VERSION = 1;

export interface LargeAssetSpec {
  /** Exact triangle count of the mesh. */
  triangles: number;
  /** Number of PNG textures, shared out two per material (base colour + normal map). */
  textures: number;
  /** Side of each square texture in pixels. */
  textureSize: number;
  seed: number;
}

export function largeAssetPath(spec: LargeAssetSpec): string {
  return path.join(BENCH_CACHE, `mesh-${spec.triangles}t-${spec.textures}x${spec.textureSize}-s${spec.seed}-v${GENERATOR_VERSION}.glb`);
}

/** A smooth seeded pattern with a little grain, so PNG sizes and encode times resemble real textures, not noise. */
async function texturePng(size: number, random: () => number): Promise<Uint8Array> {
  const channels = 3;
  const pixels = Buffer.alloc(size * size * channels);
  const wave = (freq: number, phase: number) =>
    Float32Array.from({ length: size }, (_, i) => Math.sin((i / size) * freq * Math.PI * 2 + phase));
  for (let c = 0; c < channels; c++) {
    const rows = wave(1 + random() * 12, random() * 6.28);
    const cols = wave(1 + random() * 12, random() * 6.28);
    const base = 64 + random() * 128;
    let grain = Math.floor(random() * 0xffffffff) || 1;
    for (let y = 0; y < size; y++) {
      const r = rows[y]!;
      let offset = y * size * channels + c;
      for (let x = 0; x < size; x++, offset += channels) {
        grain ^= grain << 13;
        grain ^= grain >>> 17;
        grain ^= grain << 5;
        const v = base + 60 * r * cols[x]! + ((grain & 15) - 8);
        pixels[offset] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return new Uint8Array(
    await sharp(pixels, { raw: { width: size, height: size, channels } })
      .png()
      .toBuffer(),
  );
}

/**
 * Builds the asset in memory: a seeded heightfield of exactly `triangles` triangles (positions,
 * normals, UVs, 32-bit indices), split into one primitive per material, and `textures` seeded PNGs.
 */
export async function buildLargeAsset(spec: LargeAssetSpec): Promise<Document> {
  const random = seededRandom(spec.seed);
  const columns = Math.max(1, Math.ceil(Math.sqrt(spec.triangles / 2)));
  const rowsCount = Math.max(1, Math.ceil(spec.triangles / 2 / columns));
  const vertexCount = (columns + 1) * (rowsCount + 1);
  const positions = new Float32Array(vertexCount * 3);
  const normals = new Float32Array(vertexCount * 3);
  const uvs = new Float32Array(vertexCount * 2);
  const waves = Array.from({ length: 4 }, () => ({
    fx: 1 + random() * 8,
    fz: 1 + random() * 8,
    phase: random() * 6.28,
    amp: 0.02 + random() * 0.05,
  }));
  const height = (u: number, v: number) =>
    waves.reduce((h, w) => h + w.amp * Math.sin(u * w.fx * 6.28 + w.phase) * Math.cos(v * w.fz * 6.28), 0);
  for (let j = 0; j <= rowsCount; j++) {
    for (let i = 0; i <= columns; i++) {
      const k = j * (columns + 1) + i;
      const u = i / columns;
      const v = j / rowsCount;
      const y = height(u, v) + (random() - 0.5) * 0.002;
      positions.set([u - 0.5, y, v - 0.5], k * 3);
      const e = 1e-3;
      const dx = (height(u + e, v) - height(u - e, v)) / (2 * e);
      const dz = (height(u, v + e) - height(u, v - e)) / (2 * e);
      const len = Math.hypot(dx, 1, dz);
      normals.set([-dx / len, 1 / len, -dz / len], k * 3);
      uvs.set([u, v], k * 2);
    }
  }
  const indices = new Uint32Array(spec.triangles * 3);
  let t = 0;
  for (let j = 0; j < rowsCount && t < spec.triangles; j++) {
    for (let i = 0; i < columns && t < spec.triangles; i++) {
      const a = j * (columns + 1) + i;
      const b = a + 1;
      const c = a + columns + 1;
      const d = c + 1;
      indices.set([a, c, b], t++ * 3);
      if (t < spec.triangles) indices.set([b, c, d], t++ * 3);
    }
  }

  const doc = new Document();
  const buffer = doc.createBuffer();
  const position = doc.createAccessor('POSITION').setType('VEC3').setArray(positions).setBuffer(buffer);
  const normal = doc.createAccessor('NORMAL').setType('VEC3').setArray(normals).setBuffer(buffer);
  const texcoord = doc.createAccessor('TEXCOORD_0').setType('VEC2').setArray(uvs).setBuffer(buffer);
  const textures: Texture[] = [];
  for (let i = 0; i < spec.textures; i++) {
    textures.push(
      doc
        .createTexture(`texture-${i}`)
        .setMimeType('image/png')
        .setImage(await texturePng(spec.textureSize, random)),
    );
  }
  const materialCount = Math.max(1, Math.ceil(spec.textures / 2));
  const mesh = doc.createMesh('terrain');
  const perPrimitive = Math.ceil(spec.triangles / materialCount);
  for (let m = 0; m < materialCount; m++) {
    const material = doc.createMaterial(`material-${m}`);
    if (textures[2 * m]) material.setBaseColorTexture(textures[2 * m]!);
    if (textures[2 * m + 1]) material.setNormalTexture(textures[2 * m + 1]!);
    const slice = indices.slice(m * perPrimitive * 3, Math.min(spec.triangles, (m + 1) * perPrimitive) * 3);
    if (slice.length === 0) continue;
    const index = doc.createAccessor(`indices-${m}`).setType('SCALAR').setArray(slice).setBuffer(buffer);
    mesh.addPrimitive(
      doc
        .createPrimitive()
        .setAttribute('POSITION', position)
        .setAttribute('NORMAL', normal)
        .setAttribute('TEXCOORD_0', texcoord)
        .setIndices(index)
        .setMaterial(material),
    );
  }
  doc.createScene('scene').addChild(doc.createNode('terrain').setMesh(mesh));
  return doc;
}

/** The asset's GLB in the cache, generated (deterministically, from the seed) on first use. */
export async function largeAsset(spec: LargeAssetSpec): Promise<string> {
  const file = largeAssetPath(spec);
  if (existsSync(file)) return file;
  mkdirSync(BENCH_CACHE, { recursive: true });
  const glb = await new NodeIO().writeBinary(await buildLargeAsset(spec));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, glb);
  renameSync(tmp, file);
  return file;
}

/**
 * A GLB of exactly `bytes` (rounded up to 4) whose binary chunk is seeded pseudo-random data: an
 * upload-sized file for the upload benchmark, written in 4 MiB pieces without holding it in memory.
 */
export async function uploadSizedGlb(bytes: number, seed: number): Promise<string> {
  const file = path.join(BENCH_CACHE, `upload-${bytes}-s${seed}-v${GENERATOR_VERSION}.glb`);
  if (existsSync(file)) return file;
  mkdirSync(BENCH_CACHE, { recursive: true });
  // The JSON chunk is padded with spaces to a multiple of 4, as the GLB format requires.
  const makeJson = (binLength: number) => {
    let json = JSON.stringify({ asset: { version: '2.0', generator: 'asset-farm bench' }, buffers: [{ byteLength: binLength }] });
    while (json.length % 4) json += ' ';
    return Buffer.from(json);
  };
  const overhead = 12 + 8 + makeJson(0).length + 8 + 8;
  const binLength = Math.max(4, Math.ceil((bytes - overhead) / 4) * 4);
  const json = makeJson(binLength);
  const total = 12 + 8 + json.length + 8 + binLength;
  const header = Buffer.alloc(12 + 8);
  header.writeUInt32LE(0x46546c67, 0);
  header.writeUInt32LE(2, 4);
  header.writeUInt32LE(total, 8);
  header.writeUInt32LE(json.length, 12);
  header.writeUInt32LE(0x4e4f534a, 16);
  const binHeader = Buffer.alloc(8);
  binHeader.writeUInt32LE(binLength, 0);
  binHeader.writeUInt32LE(0x004e4942, 4);
  const tmp = `${file}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  const write = async (chunk: Buffer) => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(Buffer.concat([header, json, binHeader]));
  let state = seed || 1;
  const piece = 4 * 1024 * 1024;
  for (let written = 0; written < binLength; written += piece) {
    const words = new Uint32Array(Math.min(piece, binLength - written) / 4);
    state = fillXorshift(words, state);
    await write(Buffer.from(words.buffer));
  }
  out.end();
  await once(out, 'finish');
  renameSync(tmp, file);
  return file;
}
