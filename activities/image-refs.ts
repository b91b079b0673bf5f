import { createHash } from 'node:crypto';
import type { Document } from '@gltf-transform/core';

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

/** Replaces every texture's image by a reference to it; returns how many were replaced. */
export function replaceImagesByReferences(doc: Document): number {
  let replaced = 0;
  for (const texture of doc.getRoot().listTextures()) {
    const image = texture.getImage();
    if (!image || referencedDigest(image)) continue;
    texture.setImage(new Uint8Array(Buffer.from(REF_PREFIX + sha256Hex(image), 'latin1')));
    replaced++;
  }
  return replaced;
}
