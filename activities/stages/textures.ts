import fs from 'node:fs/promises';
import path from 'node:path';
import { ImageUtils, type Texture } from '@gltf-transform/core';
import { getTextureColorSpace, listTextureSlots } from '@gltf-transform/functions';
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { TextureResult } from '../../common/pipeline.js';
import { textureLabel } from '../asset-stats.js';
import { lossIsVisible, measureFidelity, rawRgba, SMALL_TEXTURE_PIXELS } from '../texture-fidelity.js';
import { readJsonIfExists, removeTempFiles, writeFileAtomic } from '../asset-io.js';
import { invalidAsset } from '../invalid-asset-error.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { TexturesCheckpoint, TextureWorkRecord, workFiles } from '../work-files.js';
import { optimizedOriginals, readOptimizedGeometry, referencedDigest, sha256Hex } from '../image-refs.js';
import { type BasisCodec, basisuPath, encodeKtx2 } from '../tools/basisu.js';

/** The encoding a texture gets: its MIME type, file extension and sharp's encoder call. */
interface Encoding {
  mimeType: string;
  extension: string;
  encode: (image: Sharp, quality: number) => Sharp;
}

const WEBP: Encoding = { mimeType: 'image/webp', extension: 'webp', encode: (img, quality) => img.webp({ quality, effort: 4 }) };
const PNG: Encoding = { mimeType: 'image/png', extension: 'png', encode: (img) => img.png({ compressionLevel: 9 }) };
const JPEG: Encoding = { mimeType: 'image/jpeg', extension: 'jpg', encode: (img, quality) => img.jpeg({ quality, mozjpeg: true }) };

const ENCODING_BY_MIME: Record<string, Encoding> = { 'image/webp': WEBP, 'image/png': PNG, 'image/jpeg': JPEG };

/** The sharp encoding for webp and keep (KTX2 goes through basisu, see encodeAsKtx2). */
function encodingFor(format: StageJob['settings']['textureFormat'], sourceMime: string): { encoding: Encoding; warnings: string[] } {
  if (format === 'webp') return { encoding: WEBP, warnings: [] };
  if (sourceMime === 'image/jpeg') return { encoding: JPEG, warnings: [] };
  if (sourceMime === 'image/webp') return { encoding: WEBP, warnings: [] };
  return { encoding: PNG, warnings: [] };
}

/**
 * Resizes every texture to fit settings.maxTextureSize and re-encodes it. Each finished texture is saved in
 * the work folder and listed in the heartbeat checkpoint, so a retried attempt continues where this one stopped.
 */
export async function texturesStage(job: StageJob, progress: StageProgress): Promise<TextureResult[]> {
  // The model with references in place of its images; each image is read when its turn comes and let go after.
  const doc = await readOptimizedGeometry(job.workDir);
  const original = optimizedOriginals(job.workDir);
  const textures = doc.getRoot().listTextures();
  const resumed = TexturesCheckpoint.safeParse(job.checkpoint);
  const done = new Set(resumed.success ? resumed.data.done : []);
  progress.start(textures.length, 'textures', textures.length ? `Processing ${textures.length} textures` : 'No textures');
  await fs.mkdir(workFiles.texturesDir(job.workDir), { recursive: true });
  await removeTempFiles(workFiles.texturesDir(job.workDir));
  await fs.rm(encodingDir(job.workDir), { recursive: true, force: true });
  // KTX2 asked and no encoder here: fail before any work, never write another format in its place.
  if (job.settings.textureFormat === 'ktx2' && textures.some((t) => t.getMimeType() !== 'image/ktx2')) basisuPath();
  const results: TextureResult[] = [];
  for (const [index, texture] of textures.entries()) {
    const name = textureLabel(texture, index);
    const kept = done.has(index) ? await readJsonIfExists(workFiles.textureResult(job.workDir, index), TextureWorkRecord) : null;
    const keptFileExists = kept
      ? await fs.stat(path.join(workFiles.texturesDir(job.workDir), kept.file)).then(
          () => true,
          () => false,
        )
      : false;
    if (kept && keptFileExists) {
      results.push({ ...kept.result, resumed: true });
    } else {
      progress.update(index, `Resizing ${name}`);
      const reference = texture.getImage();
      const digest = reference ? referencedDigest(reference) : null;
      if (reference && digest) {
        const image = await original(digest, index);
        if (!image) throw new Error(`optimized.glb has no image ${digest} for texture ${index} (${name}): run optimizeAsset again`);
        texture.setImage(image);
      }
      try {
        results.push(await processTexture(job, index, name, texture, progress));
      } finally {
        if (reference) texture.setImage(reference);
      }
    }
    done.add(index);
    progress.update(index + 1, `${name} done`, { done: [...done].sort((a, b) => a - b) });
  }
  return results;
}

async function processTexture(
  job: StageJob,
  index: number,
  name: string,
  texture: Texture,
  progress: StageProgress,
): Promise<TextureResult> {
  const image = texture.getImage();
  const mimeType = texture.getMimeType();
  if (!image) throw invalidAsset(`Texture "${name}" has no image data.`, 'TEXTURE_WITHOUT_IMAGE', `/textures/${index}`);
  if (mimeType === 'image/ktx2') {
    // Already GPU-compressed; sharp cannot decode it, and re-encoding would only lose quality. Packaging
    // keeps the original because no processed image is recorded for it.
    const [width, height] = ImageUtils.getSize(image, mimeType) ?? [0, 0];
    const facts = { width, height, bytes: image.byteLength, mimeType };
    return { name, before: facts, after: facts, warnings: ['KTX2 texture kept as uploaded: it cannot be resized here.'] };
  }
  const { maxTextureSize, textureFormat, textureQuality } = job.settings;
  let meta: Metadata;
  try {
    meta = await sharp(image).metadata();
  } catch (err) {
    throw invalidAsset(`Texture "${name}" is not a readable image: ${(err as Error).message}`, 'IMAGE_UNREADABLE', `/textures/${index}`);
  }
  if (textureFormat === 'ktx2') return encodeAsKtx2(job, index, name, texture, image, meta, progress);
  const { encoding, warnings } = encodingFor(textureFormat, mimeType);
  const resize = () => sharp(image).resize({ width: maxTextureSize, height: maxTextureSize, fit: 'inside', withoutEnlargement: true });
  let encoded = await encoding.encode(resize(), textureQuality).toBuffer({ resolveWithObject: true });
  let { width, height } = encoded.info;
  const source = await rawRgba(resize(), width, height);
  let fidelity = measureFidelity(source, await rawRgba(encoded.data, width, height));
  let method: 'lossy' | 'lossless' | 'source' = fidelity.maxChannelError === 0 ? 'lossless' : 'lossy';
  let after = encoding;
  if (lossIsVisible(fidelity, width, height)) {
    // The colours would change where the artist can see it: same container, lossless (JPEG has none: PNG).
    after = encoding === JPEG ? PNG : encoding;
    encoded = await (after === WEBP ? resize().webp({ lossless: true, effort: 4 }) : PNG.encode(resize(), 100)).toBuffer({
      resolveWithObject: true,
    });
    ({ width, height } = encoded.info);
    fidelity = measureFidelity(source, await rawRgba(encoded.data, width, height));
    method = 'lossless';
    const resized = width !== (meta.width ?? 0) || height !== (meta.height ?? 0);
    const sourceEncoding = ENCODING_BY_MIME[mimeType];
    if (!resized && sourceEncoding && encoded.data.byteLength >= image.byteLength) {
      // Lossless came out no smaller than the upload's own image, which is exact: keep that.
      encoded = { data: Buffer.from(image), info: encoded.info };
      after = sourceEncoding;
      fidelity = { maxChannelError: 0, psnrDb: null };
      method = 'source';
    }
    warnings.push(
      `Lossy ${encoding.extension.toUpperCase()} at quality ${textureQuality} would have changed colours visibly; ` +
        (method === 'source' ? 'the uploaded image was kept as it is.' : `it was written lossless (${after.extension.toUpperCase()}).`),
    );
  }
  const file = `${index}.${after.extension}`;
  await writeFileAtomic(workFiles.textureImage(job.workDir, index, after.extension), encoded.data);
  // The LODs' copies in LOD0's container and kind of encoding, so each level looks like LOD0, only smaller.
  const finalEncoding = after;
  const copies = await writeLodCopies(job, index, { width, height, mimeType: after.mimeType, extension: after.extension }, 1, (w, h) => {
    const scaled = () => sharp(image).resize({ width: w, height: h, fit: 'fill' });
    if (method === 'lossy') return finalEncoding.encode(scaled(), textureQuality).toBuffer();
    if (finalEncoding === WEBP) return scaled().webp({ lossless: true, effort: 4 }).toBuffer();
    return (finalEncoding === JPEG ? JPEG.encode(scaled(), 95) : PNG.encode(scaled(), 100)).toBuffer();
  });
  const result: TextureResult = {
    name,
    before: { width: meta.width ?? 0, height: meta.height ?? 0, bytes: image.byteLength, mimeType },
    after: { width, height, bytes: encoded.data.byteLength, mimeType: after.mimeType },
    fidelity: { ...fidelity, encoding: method },
    ...(warnings.length ? { warnings } : {}),
    ...(copies.lods.length ? { lods: copies.lods } : {}),
  };
  await recordTexture(job, index, image, file, result, copies.lodFiles);
  return result;
}

async function recordTexture(
  job: StageJob,
  index: number,
  source: Uint8Array,
  file: string,
  result: TextureResult,
  lodFiles: Record<string, string> = {},
): Promise<void> {
  const record: TextureWorkRecord = {
    index,
    sourceSha256: sha256Hex(source),
    file,
    result,
    ...(Object.keys(lodFiles).length ? { lodFiles } : {}),
  };
  await writeFileAtomic(workFiles.textureResult(job.workDir, index), JSON.stringify(record));
}

/** Where basisu's input PNGs and outputs live while it runs (removed when the stage starts and after each texture). */
const encodingDir = (workDir: string) => path.join(workFiles.texturesDir(workDir), 'encoding');

/** Basis Universal blocks are 4 × 4: a KHR_texture_basisu image's sides are multiples of 4. */
function ktx2Size(width: number, height: number, maxSide: number): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(width, height, 1));
  const side = (n: number) => Math.max(4, Math.round((n * scale) / 4) * 4);
  return [side(width), side(height)];
}

/**
 * A KHR_texture_basisu image with a full mip chain: ETC1S for colour (base colour, emissive), UASTC for
 * normal maps and data (metallic-roughness, occlusion), where ETC1S's block artefacts would bend normals
 * and shift material values. Resized by sharp first, encoded by basisu. The fidelity figures are basisu's
 * own measure of the decoded full-size level against the resized source. A small colour texture (a palette)
 * that ETC1S would change visibly is written as UASTC instead; a visible loss that remains is said in a warning.
 */
async function encodeAsKtx2(
  job: StageJob,
  index: number,
  name: string,
  texture: Texture,
  image: Uint8Array,
  meta: Metadata,
  progress: StageProgress,
): Promise<TextureResult> {
  const { maxTextureSize, textureQuality } = job.settings;
  const srgb = getTextureColorSpace(texture) === 'srgb';
  const normalMap = listTextureSlots(texture).includes('normalTexture');
  const [width, height] = ktx2Size(meta.width ?? 0, meta.height ?? 0, maxTextureSize);
  const dir = encodingDir(job.workDir);
  await fs.mkdir(dir, { recursive: true });
  const input = path.join(dir, `${index}.png`);
  const output = path.join(dir, `${index}.ktx2`);
  const warnings: string[] = [];
  try {
    await sharp(image).resize({ width, height, fit: 'fill' }).png({ compressionLevel: 1 }).toFile(input);
    const encode = (codec: BasisCodec) =>
      encodeKtx2({
        input,
        output,
        codec,
        srgb,
        normalMap,
        quality: textureQuality,
        onProcess: (pid, running) => progress.process?.(pid, running),
      });
    let codec: BasisCodec = srgb ? 'etc1s' : 'uastc';
    let fidelity = await encode(codec);
    if (codec === 'etc1s' && width * height <= SMALL_TEXTURE_PIXELS && lossIsVisible(fidelity, width, height)) {
      // A palette or small atlas: one wrong texel is a wrong colour on the model, and UASTC costs little here.
      const etc1s = fidelity;
      codec = 'uastc';
      fidelity = await encode(codec);
      warnings.push(
        `KTX2 ETC1S would have changed this small texture's colours visibly (largest channel error ${etc1s.maxChannelError}/255); it was written as UASTC, which keeps more detail.`,
      );
    }
    if (lossIsVisible(fidelity, width, height)) {
      warnings.push(
        `KTX2 ${codec.toUpperCase()} changes this texture visibly (largest channel error ${fidelity.maxChannelError}/255, PSNR ${fidelity.psnrDb ?? '∞'} dB): GPU block compression cannot keep every colour; raise the texture quality, or choose WebP or Keep where the colours must stay.`,
      );
    }
    const bytes = await fs.readFile(output);
    const file = `${index}.ktx2`;
    await writeFileAtomic(workFiles.textureImage(job.workDir, index, 'ktx2'), bytes);
    // The LODs' copies with LOD0's codec, at sides that stay multiples of 4.
    const finalCodec = codec;
    const copies = await writeLodCopies(job, index, { width, height, mimeType: 'image/ktx2', extension: 'ktx2' }, 4, async (w, h) => {
      await sharp(image).resize({ width: w, height: h, fit: 'fill' }).png({ compressionLevel: 1 }).toFile(input);
      await encodeKtx2({
        input,
        output,
        codec: finalCodec,
        srgb,
        normalMap,
        quality: textureQuality,
        onProcess: (pid, running) => progress.process?.(pid, running),
      });
      return fs.readFile(output);
    });
    const result: TextureResult = {
      name,
      before: { width: meta.width ?? 0, height: meta.height ?? 0, bytes: image.byteLength, mimeType: texture.getMimeType() },
      after: { width, height, bytes: bytes.byteLength, mimeType: 'image/ktx2' },
      fidelity: { ...fidelity, encoding: 'lossy' },
      codec,
      ...(warnings.length ? { warnings } : {}),
      ...(copies.lods.length ? { lods: copies.lods } : {}),
    };
    await recordTexture(job, index, image, file, result, copies.lodFiles);
    return result;
  } finally {
    await Promise.all([fs.rm(input, { force: true }), fs.rm(output, { force: true })]);
  }
}

/**
 * The sides of each simplified LOD's copy of a texture delivered at width × height: √ratio of LOD0's, so
 * its pixels shrink in proportion to its triangles (DamagedHelmet's 2048² at ratios 0.5 and 0.25: 1448²
 * and 1024²), rounded to `multiple`. Null for a level that shares LOD0's image: a small texture (a palette
 * or atlas, where every texel is a colour) is never shrunk, nor is a copy that would not be smaller.
 */
export function lodTextureSides(
  lodRatios: readonly number[],
  width: number,
  height: number,
  multiple = 1,
): ({ level: number; width: number; height: number } | null)[] {
  return lodRatios.map((ratio, i) => {
    if (width * height <= SMALL_TEXTURE_PIXELS) return null;
    const scale = Math.sqrt(ratio);
    const side = (n: number) => Math.max(multiple, Math.round((n * scale) / multiple) * multiple);
    const [w, h] = [side(width), side(height)];
    // Rounding up to a multiple may grow a thin side past LOD0's: that level shares LOD0's image instead.
    return w <= width && h <= height && (w < width || h < height) ? { level: i + 1, width: w, height: h } : null;
  });
}

/** Encodes and writes a texture's copy for each simplified LOD that gets one (lodTextureSides). */
async function writeLodCopies(
  job: StageJob,
  index: number,
  lod0: { width: number; height: number; mimeType: string; extension: string },
  multiple: number,
  encode: (width: number, height: number) => Promise<Uint8Array>,
): Promise<{ lods: NonNullable<TextureResult['lods']>; lodFiles: Record<string, string> }> {
  const lods: NonNullable<TextureResult['lods']> = [];
  const lodFiles: Record<string, string> = {};
  for (const size of lodTextureSides(job.settings.lodRatios, lod0.width, lod0.height, multiple)) {
    if (!size) continue;
    const bytes = await encode(size.width, size.height);
    await writeFileAtomic(workFiles.textureLodImage(job.workDir, index, size.level, lod0.extension), bytes);
    lodFiles[String(size.level)] = path.basename(workFiles.textureLodImage(job.workDir, index, size.level, lod0.extension));
    lods.push({ level: size.level, width: size.width, height: size.height, bytes: bytes.byteLength, mimeType: lod0.mimeType });
  }
  return { lods, lodFiles };
}

/** A texture the stage finished, with its new image and its LOD copies' (by level). */
export interface ProcessedTexture extends TextureWorkRecord {
  image: Uint8Array;
  lodImages: Map<number, Uint8Array>;
}

/** The textures the stage finished, keyed by the digest of their source image, for packaging. */
export async function readProcessedTextures(workDir: string): Promise<Map<string, ProcessedTexture>> {
  const dir = workFiles.texturesDir(workDir);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const records = await Promise.all(
    names.filter((n) => /^\d+\.json$/.test(n)).map((n) => readJsonIfExists(path.join(dir, n), TextureWorkRecord)),
  );
  const loaded = await Promise.all(
    records.flatMap((r) =>
      r
        ? [
            (async (): Promise<ProcessedTexture> => {
              const image = await fs.readFile(path.join(dir, r.file));
              const lodImages = new Map<number, Uint8Array>();
              for (const [level, file] of Object.entries(r.lodFiles ?? {}))
                lodImages.set(Number(level), await fs.readFile(path.join(dir, file)));
              return { ...r, image, lodImages };
            })(),
          ]
        : [],
    ),
  );
  return new Map(loaded.map((t) => [t.sourceSha256, t]));
}

/** Removes the processed textures of an interrupted run. */
export async function discardTextures(workDir: string): Promise<void> {
  await fs.rm(workFiles.texturesDir(workDir), { recursive: true, force: true });
}

// The stage module (activities/stage-module.ts).
export const run = texturesStage;
export const discard = (job: StageJob) => discardTextures(job.workDir);
