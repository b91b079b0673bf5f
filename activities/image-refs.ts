import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Document, Texture } from '@gltf-transform/core';
import { z } from 'zod';
import { readWorkFile } from './asset-io.js';
import { workFiles } from './work-files.js';

/**
 * LOD work files (lods/lod<N>.glb) carry each texture's image as a reference to its bytes in the optimised
 * GLB (optimized.glb), not the bytes themselves: the images are the same for every level, and at 8 × 4096²
 * they are most of the file. The lods stage would otherwise read and write them once per level, and the
 * package stage read and hash them once per level again. A reference is this prefix followed by the
 * image's SHA-256 (hex), the key the textures stage files its processed copy under; no PNG, JPEG, WebP or
 * KTX2 file starts with it. Packaging puts the processed or the original image back in its place
 * (activities/stages/package.ts), so no reference ever reaches an output.
 */
const REF_PREFIX = 'asset-farm image sha256:';
const REF_BYTES = REF_PREFIX.length + 64;

/** SHA-256 of the bytes, hex: the key of an image's bytes, and the digest of each output file. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The digest a reference names, or null when `image` is image data, not a reference. */
export function referencedDigest(image: Uint8Array): string | null {
  if (image.byteLength !== REF_BYTES) return null;
  const text = Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString('latin1');
  if (!text.startsWith(REF_PREFIX)) return null;
  const digest = text.slice(REF_PREFIX.length);
  return /^[0-9a-f]{64}$/.test(digest) ? digest : null;
}

/** The digest of an image, read from it when it already is a reference. */
export function digestOf(image: Uint8Array): string {
  return referencedDigest(image) ?? sha256Hex(image);
}

/** Replaces every texture's image by a reference to it; returns the images replaced, by texture. */
export function replaceImagesByReferences(doc: Document): Map<Texture, Uint8Array> {
  const replaced = new Map<Texture, Uint8Array>();
  for (const texture of doc.getRoot().listTextures()) {
    const image = texture.getImage();
    if (!image || referencedDigest(image)) continue;
    texture.setImage(new Uint8Array(Buffer.from(REF_PREFIX + sha256Hex(image), 'latin1')));
    replaced.set(texture, image);
  }
  return replaced;
}

/** Runs `use` on the document with references in place of its images, then puts the images back. */
export async function withImageReferences<T>(doc: Document, use: () => Promise<T>): Promise<T> {
  const replaced = replaceImagesByReferences(doc);
  try {
    return await use();
  } finally {
    for (const [texture, image] of replaced) texture.setImage(image);
  }
}

/**
 * The optimised model with references in place of its images: optimized-geometry.glb, or for a work
 * folder an older optimize filled without it, optimized.glb read and its images replaced.
 */
export async function readOptimizedGeometry(workDir: string): Promise<Document> {
  const file = workFiles.optimizedGeometry(workDir);
  if (
    await fs.stat(file).then(
      () => true,
      () => false,
    )
  )
    return readWorkFile(file, 'optimizeAsset');
  const doc = await readWorkFile(workFiles.optimized(workDir), 'optimizeAsset');
  replaceImagesByReferences(doc);
  return doc;
}

const GlbImageLayout = z.object({
  images: z.array(z.object({ bufferView: z.number().int().nonnegative().optional() })).default([]),
  bufferViews: z
    .array(z.object({ byteOffset: z.number().int().nonnegative().default(0), byteLength: z.number().int().nonnegative() }))
    .default([]),
});

/**
 * The optimised model's original images, one at a time: image `index` (the index of its texture, as
 * glTF-Transform writes one image per texture in order) read from optimized.glb's binary chunk alone, and
 * checked against the digest its reference names. An image not found so (a file another writer laid out
 * otherwise) comes from reading the whole model, once. Returns undefined for a digest the model lacks.
 */
export function optimizedOriginals(workDir: string): (digest: string, index?: number) => Promise<Uint8Array | undefined> {
  const file = workFiles.optimized(workDir);
  let layout: Promise<{ binStart: number; images: (readonly [number, number] | null)[] } | null> | undefined;
  let whole: Promise<Map<string, Uint8Array>> | undefined;
  const readRange = async (at: readonly [number, number]) => {
    const handle = await fs.open(file);
    try {
      const bytes = Buffer.alloc(at[1]);
      const { bytesRead } = await handle.read(bytes, 0, at[1], at[0]);
      return bytesRead === at[1] ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null;
    } finally {
      await handle.close();
    }
  };
  return async (digest, index) => {
    if (index !== undefined) {
      // Unreadable as laid out here: the whole read below says what is wrong with the file.
      layout ??= readGlbImageLayout(file).catch(() => null);
      const found = await layout;
      const at = found?.images[index];
      const image = found && at ? await readRange([found.binStart + at[0], at[1]]).catch(() => null) : null;
      if (image && sha256Hex(image) === digest) return image;
    }
    whole ??= readWorkFile(file, 'optimizeAsset').then(
      (doc) =>
        new Map(
          doc
            .getRoot()
            .listTextures()
            .flatMap((t) => {
              const image = t.getImage();
              return image ? [[sha256Hex(image), image] as const] : [];
            }),
        ),
    );
    return (await whole).get(digest);
  };
}

/** Where each image of a GLB lies in its binary chunk, from its header and JSON chunk. */
async function readGlbImageLayout(file: string): Promise<{ binStart: number; images: (readonly [number, number] | null)[] }> {
  const handle = await fs.open(file);
  try {
    const header = Buffer.alloc(20);
    await handle.read(header, 0, 20, 0);
    const jsonLength = header.readUInt32LE(12);
    const json = Buffer.alloc(jsonLength);
    await handle.read(json, 0, jsonLength, 20);
    const { images, bufferViews } = GlbImageLayout.parse(JSON.parse(json.toString('utf8')));
    return {
      binStart: 20 + jsonLength + 8,
      images: images.map((image) => {
        const view = image.bufferView === undefined ? undefined : bufferViews[image.bufferView];
        return view ? ([view.byteOffset, view.byteLength] as const) : null;
      }),
    };
  } finally {
    await handle.close();
  }
}
