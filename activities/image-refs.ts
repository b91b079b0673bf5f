import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Document, Format, type Texture } from '@gltf-transform/core';
import { z } from 'zod';
import { assetIO, readWorkFile, writeGlbAtomic, writeGlbChunksAtomic } from './asset-io.js';
import { imageSize } from './asset-stats.js';
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

/** What a stats report needs of an image it no longer holds: its pixel size (null when unreadable) and bytes. */
export interface ImageFacts {
  size: [number, number] | null;
  bytes: number;
}

/**
 * A document's images moved out to temporary files of `dir` (`.tmp`: never stored as checkpoints, removed
 * with a discarded attempt), each replaced by its reference, so that cleaning the geometry does not also
 * hold hundreds of MiB of pixels. `read` gives an image back by digest; `facts` what stats need of it.
 */
export async function stashImages(doc: Document, dir: string): Promise<ImageStash> {
  const files = new Map<string, string>();
  const facts = new Map<string, ImageFacts>();
  for (const [texture, image] of replaceImagesByReferences(doc)) {
    const digest = referencedDigest(texture.getImage()!)!;
    // Its size is read as its MIME type says, which two textures of the same bytes might not agree on.
    const key = `${digest} ${texture.getMimeType()}`;
    if (!facts.has(key)) facts.set(key, { size: imageSize(image, texture.getMimeType()), bytes: image.byteLength });
    if (files.has(digest)) continue;
    const file = path.join(dir, `image-${digest}.${randomUUID()}.tmp`);
    await fs.writeFile(file, image);
    files.set(digest, file);
  }
  return {
    facts: (image, mimeType) => {
      const digest = referencedDigest(image);
      return digest ? facts.get(`${digest} ${mimeType}`) : undefined;
    },
    async read(digest) {
      const file = files.get(digest);
      if (!file) throw new Error(`No image ${digest} was stashed: a pipeline bug; report the job id to the pipeline team`);
      return new Uint8Array(await fs.readFile(file));
    },
    async remove() {
      await Promise.all([...files.values()].map((f) => fs.rm(f, { force: true })));
    },
  };
}

export interface ImageStash {
  facts: (image: Uint8Array, mimeType: string) => ImageFacts | undefined;
  read: (digest: string) => Promise<Uint8Array>;
  remove: () => Promise<void>;
}

/**
 * Writes a document whose images are references as the GLB it would be with the images: the layout
 * glTF-Transform writes for the references (images after the accessors in the one buffer, each padded to
 * 8 bytes; 88-byte references need no padding) with each reference's slot widened to its image, whatever
 * follows shifted by as much. The images are read one at a time (`imageOf`) and written as they come, so
 * neither the images nor a whole binary chunk are ever in memory together. Byte for byte what
 * writeGlbAtomic gives for the document with its images (activities/image-refs.test.ts). Returns the size.
 */
export async function writeGlbWithImages(doc: Document, file: string, imageOf: (digest: string) => Promise<Uint8Array>): Promise<number> {
  const io = await assetIO();
  const { json, resources } = await io.writeJSON(doc, { format: Format.GLB });
  const bin = Object.values(resources)[0];
  const views = json.bufferViews ?? [];
  const imageViews = (json.images ?? [])
    .map((image) => (image.bufferView === undefined ? null : views[image.bufferView]))
    .filter((view) => view !== null && view !== undefined);
  if (!bin || imageViews.length === 0 || (json.buffers ?? []).length !== 1) {
    // Another layout (a compression extension's fallback buffer, no images): written the usual way, with
    // the images back in the document for as long as that takes.
    const referenced = doc
      .getRoot()
      .listTextures()
      .flatMap((texture) => {
        const image = texture.getImage();
        const digest = image ? referencedDigest(image) : null;
        return image && digest ? [[texture, image, digest] as const] : [];
      });
    try {
      for (const [texture, , digest] of referenced) texture.setImage(await imageOf(digest));
      return await writeGlbAtomic(doc, file);
    } finally {
      for (const [texture, reference] of referenced) texture.setImage(reference);
    }
  }
  // Each image's slot in the binary chunk, in order. The writer pads the buffer to a multiple of 8 after
  // each image, so a slot ends at the next multiple of 8 after its bytes, before and after widening.
  const ceil8 = (n: number) => Math.ceil(n / 8) * 8;
  const found: { view: (typeof views)[number]; start: number; end: number; digest: string }[] = [];
  for (const view of imageViews) {
    const start = view.byteOffset ?? 0;
    const digest = referencedDigest(bin.subarray(start, start + view.byteLength));
    if (!digest) throw new Error(`writeGlbWithImages: the image at byte ${start} is not a reference`);
    found.push({ view, start, end: ceil8(start + view.byteLength), digest });
  }
  found.sort((a, b) => a.start - b.start);
  const lengths = new Map<string, number>();
  const slots: ((typeof found)[number] & { length: number; newStart: number; newEnd: number })[] = [];
  let shift = 0;
  for (const slot of found) {
    let length = lengths.get(slot.digest);
    if (length === undefined) {
      length = (await imageOf(slot.digest)).byteLength;
      lengths.set(slot.digest, length);
    }
    const newStart = slot.start + shift;
    const newEnd = ceil8(newStart + length);
    slots.push({ ...slot, length, newStart, newEnd });
    shift = newEnd - slot.end;
  }
  // A view moves by what the image slots before it grew; an image view takes its image's length.
  const shiftAt = (offset: number) => {
    const before = slots.filter((slot) => slot.start < offset).at(-1);
    return before ? (offset >= before.end ? before.newEnd - before.end : before.newStart - before.start) : 0;
  };
  for (const view of views) view.byteOffset = (view.byteOffset ?? 0) + shiftAt(view.byteOffset ?? 0);
  for (const slot of slots) slot.view.byteLength = slot.length;
  const byteLength = bin.byteLength + shift;
  json.buffers![0]!.byteLength = byteLength;
  async function* parts(): AsyncGenerator<Uint8Array> {
    let at = 0;
    for (const slot of slots) {
      yield bin!.subarray(at, slot.start);
      const image = await imageOf(slot.digest);
      if (image.byteLength !== slot.length) throw new Error(`writeGlbWithImages: image ${slot.digest} changed length while written`);
      yield image;
      if (slot.newEnd > slot.newStart + image.byteLength) yield new Uint8Array(slot.newEnd - slot.newStart - image.byteLength);
      at = Math.min(slot.end, bin!.byteLength);
    }
    yield bin!.subarray(at);
  }
  return writeGlbChunksAtomic(file, json, { byteLength, parts: parts() });
}
