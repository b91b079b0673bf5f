import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type Document, Format, Logger, NodeIO } from '@gltf-transform/core';
import { ALL_EXTENSIONS } from '@gltf-transform/extensions';
import draco3d from 'draco3dgltf';
import { MeshoptDecoder, MeshoptEncoder, MeshoptSimplifier } from 'meshoptimizer';
import { z } from 'zod';
import { DEFAULT_ASSET_LIMITS } from '../common/config.js';
import { assetOverLimit, deterministicFailure, invalidAsset, InvalidAssetError, unsupportedAsset } from './invalid-asset-error.js';

const GLB_MAGIC = 0x46546c67; // 'glTF'
const GLB_JSON_CHUNK = 0x4e4f534a; // 'JSON'
const GLB_BIN_CHUNK = 0x004e4942; // 'BIN\0'

/** The part of a glTF JSON we need before letting any library read it: proof it is glTF, and its URIs. */
const GltfJsonShape = z.looseObject({
  asset: z.looseObject({ version: z.string(), minVersion: z.string().optional() }),
  extensionsUsed: z.array(z.string()).optional(),
  extensionsRequired: z.array(z.string()).optional(),
  buffers: z.array(z.looseObject({ uri: z.string().optional() })).optional(),
  images: z.array(z.looseObject({ uri: z.string().optional() })).optional(),
});

let ioPromise: Promise<NodeIO> | null = null;
const QUIET_LOGGER = new Logger(Logger.Verbosity.WARN);

/** One NodeIO per thread with every extension and the Draco and meshopt codecs registered (their WASM loads once). */
export function assetIO(): Promise<NodeIO> {
  ioPromise ??= (async () => {
    await Promise.all([MeshoptDecoder.ready, MeshoptEncoder.ready, MeshoptSimplifier.ready]);
    const [decoder, encoder] = await Promise.all([draco3d.createDecoderModule(), draco3d.createEncoderModule()]);
    return new NodeIO().setLogger(QUIET_LOGGER).registerExtensions(ALL_EXTENSIONS).registerDependencies({
      'draco3d.decoder': decoder,
      'draco3d.encoder': encoder,
      'meshopt.decoder': MeshoptDecoder,
      'meshopt.encoder': MeshoptEncoder,
    });
  })();
  return ioPromise;
}

/** The glTF JSON as far as the pipeline reads it before the validator and glTF-Transform. */
export type GltfJsonHead = z.infer<typeof GltfJsonShape>;

/**
 * V8 cannot hold a string longer than 2^29 - 24 characters: a .gltf (or GLB JSON chunk) past that fails
 * with "Invalid string length" in every reader, on every attempt.
 */
const MAX_JSON_BYTES = 2 ** 29 - 24;

/** Extension names glTF-Transform can read and write (and so the pipeline processes). */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set(ALL_EXTENSIONS.map((e) => e.EXTENSION_NAME));

/**
 * The nesting depth of JSON bytes, counted without parsing (brackets inside strings skipped), stopping as
 * soon as it passes `limit`: a 100,000-deep document is refused in one linear pass instead of overflowing
 * the stack of whichever recursive reader meets it first.
 */
export function jsonDepthOver(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Pulls the JSON out of a .gltf or .glb file's bytes, failing with InvalidAsset on anything malformed.
 * For a GLB, `bytes` may be just its start (see readGltfHead) when `fileBytes` gives the file's length.
 */
export function readGltfJson(
  bytes: Uint8Array,
  fileName: string,
  maxDepth = DEFAULT_ASSET_LIMITS.jsonDepth,
  fileBytes = bytes.byteLength,
): GltfJsonHead {
  let json8: Uint8Array;
  if (/\.glb$/i.test(fileName)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (fileBytes < 20 || bytes.byteLength < 20 || view.getUint32(0, true) !== GLB_MAGIC) {
      throw invalidAsset(
        `${fileName} is not a GLB file: it does not start with the glTF magic bytes. Export it again as binary glTF.`,
        'GLB_INVALID_MAGIC',
      );
    }
    const declared = view.getUint32(8, true);
    // Bytes after the declared end are extra data glTF-Validator only warns about (GLB_EXTRA_DATA).
    if (declared > fileBytes || declared < 20) {
      throw invalidAsset(
        `${fileName} is truncated: its header says ${declared} bytes but the file has ${fileBytes}. Upload the complete file.`,
        'GLB_LENGTH_MISMATCH',
      );
    }
    const chunkLength = view.getUint32(12, true);
    if (view.getUint32(16, true) !== GLB_JSON_CHUNK || 20 + chunkLength > declared) {
      throw invalidAsset(`${fileName} has a broken JSON chunk (bad type or length). Export it again.`, 'GLB_CHUNK_LENGTH_UNALIGNED');
    }
    json8 = bytes.subarray(20, 20 + chunkLength);
  } else {
    json8 = bytes;
  }
  if (json8.byteLength > MAX_JSON_BYTES) {
    throw assetOverLimit(
      `${fileName} has ${Math.round(json8.byteLength / 1e6)} MB of glTF JSON, more than any JSON reader can hold (${Math.floor(MAX_JSON_BYTES / 1e6)} MB). Export it as .glb, or with external .bin buffers instead of embedded data: URIs.`,
      'JSON_TOO_LARGE',
    );
  }
  if (jsonDepthOver(json8, maxDepth)) {
    throw assetOverLimit(
      `${fileName} has JSON nested more than ${maxDepth} levels deep (the limit is ASSET_MAX_JSON_DEPTH). glTF itself needs fewer than 10; remove the deeply nested "extras" and export again.`,
      'JSON_TOO_DEEP',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(json8));
  } catch (err) {
    throw invalidAsset(`${fileName} does not contain valid JSON: ${(err as Error).message}`, 'INVALID_JSON');
  }
  const parsed = GltfJsonShape.safeParse(json);
  if (!parsed.success) {
    throw invalidAsset(
      `${fileName} is JSON but not glTF 2.0: it has no "asset.version". Export it from your DCC tool as glTF.`,
      'NOT_GLTF',
      '/asset',
    );
  }
  return parsed.data;
}

/**
 * Resolves a URI inside an upload to one of the upload's own files, or null for data: URIs. Anything
 * else (a scheme such as file: or https:, an absolute path, a path leaving the folder, a file that was not
 * uploaded) is refused, so a crafted asset can never make the worker read or fetch something else.
 */
export function resolveUploadUri(uri: string, uploadDir: string, fileNames: readonly string[]): string | null {
  if (/^data:/i.test(uri)) return null;
  const refuse = (why: string) =>
    invalidAsset(
      `The asset refers to "${uri}", ${why}. Keep every buffer and texture next to the model file and refer to it by name.`,
      'URI_NOT_ALLOWED',
    );
  // A scheme (file:, http:, C:) or a leading slash/backslash: nothing the upload itself contains.
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || /^[/\\]/.test(uri)) throw refuse('which is outside the upload');
  let decoded: string;
  try {
    decoded = decodeURIComponent(uri);
  } catch {
    throw refuse('which is not a valid URI');
  }
  if (/^[/\\]/.test(decoded) || /^[a-z]:/i.test(decoded)) throw refuse('which is outside the upload');
  const root = path.resolve(uploadDir);
  const full = path.resolve(root, decoded);
  if (path.dirname(full) !== root) throw refuse('which is outside the upload folder');
  if (!fileNames.includes(path.basename(full))) throw refuse('which is not one of the uploaded files');
  return full;
}

/** Checks every buffer and image URI of the asset before anything reads it. */
export function assertUrisStayInUpload(json: z.infer<typeof GltfJsonShape>, uploadDir: string, fileNames: readonly string[]): void {
  const uris = [...(json.buffers ?? []), ...(json.images ?? [])].flatMap((r) => (r.uri !== undefined ? [r.uri] : []));
  for (const uri of uris) resolveUploadUri(uri, uploadDir, fileNames);
}

/** Required extensions glTF-Transform cannot read: a valid asset this pipeline cannot process. */
export function assertRequiredExtensionsKnown(json: GltfJsonHead, fileName: string): void {
  const unknown = (json.extensionsRequired ?? []).filter((name) => !KNOWN_EXTENSIONS.has(name));
  if (unknown.length) {
    throw unsupportedAsset(
      `${fileName} uses ${unknown.join(', ')}, which this pipeline cannot process (the file requires ${unknown.length > 1 ? 'them' : 'it'}). Export it without ${unknown.length > 1 ? 'these extensions' : 'that extension'}.`,
      'EXTENSION_NOT_PROCESSABLE',
      '/extensionsRequired',
    );
  }
}

/** Optional extensions glTF-Transform does not know: it drops them on reading, and the report says so. */
export function unknownOptionalExtensions(json: GltfJsonHead): string[] {
  return (json.extensionsUsed ?? []).filter((name) => !KNOWN_EXTENSIONS.has(name) && !(json.extensionsRequired ?? []).includes(name));
}

/**
 * Reads the uploaded asset: its URIs checked first, every read failure reported as InvalidAsset.
 * glTF-Validator has already accepted it (inspect runs it first), so what glTF-Transform refuses here is
 * this pipeline's limit, said in words: asset.version 2.x is read as 2.0 (minor versions are
 * backwards-compatible by the spec), an unknown required extension is named.
 */
export async function readUpload(job: { inputDir: string; mainFile: string; fileNames: readonly string[] }): Promise<Document> {
  const file = path.join(job.inputDir, job.mainFile);
  const head = await readGltfHead(file, job.mainFile);
  assertUrisStayInUpload(head, job.inputDir, job.fileNames);
  assertRequiredExtensionsKnown(head, job.mainFile);
  const io = await assetIO();
  try {
    const jsonDoc = await io.readAsJSON(file);
    const asset = jsonDoc.json.asset;
    if (/^2\.\d+$/.test(asset.version)) asset.version = '2.0';
    if (asset.minVersion !== undefined && /^2\.\d+$/.test(asset.minVersion)) delete asset.minVersion;
    // Transforms log every step at info level; only warnings are worth a line in the worker's output.
    return (await io.readJSON(jsonDoc)).setLogger(QUIET_LOGGER);
  } catch (err) {
    if (err instanceof InvalidAssetError) throw err;
    const known = deterministicFailure(err, job.mainFile);
    if (known) throw known;
    // The validator accepted the file, so this is the reader's limit, not the artist's mistake.
    throw unsupportedAsset(
      `${job.mainFile} is valid glTF, but this pipeline's reader cannot process it (${(err as Error).message.split('\n')[0]}). Report the job id to the pipeline team; exporting with fewer extensions may work meanwhile.`,
      'READER_CANNOT_PROCESS',
    );
  }
}

/**
 * readGltfJson of a file, reading of a GLB only its header and JSON chunk: the reader that follows holds
 * the whole file once, not twice (a 366 MiB upload with 8 textures of 4096² is 366 MiB less at peak).
 */
export async function readGltfHead(file: string, fileName: string, maxDepth = DEFAULT_ASSET_LIMITS.jsonDepth): Promise<GltfJsonHead> {
  if (!/\.glb$/i.test(fileName)) return readGltfJson(await fs.readFile(file), fileName, maxDepth);
  const handle = await fs.open(file);
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(Math.min(20, size));
    await handle.read(header, 0, header.byteLength, 0);
    // Past MAX_JSON_BYTES readGltfJson refuses the chunk anyway: one byte more is enough to tell.
    const chunk = header.byteLength === 20 ? Math.min(header.readUInt32LE(12), MAX_JSON_BYTES + 1) : 0;
    const bytes = Buffer.alloc(Math.min(size, 20 + chunk));
    await handle.read(bytes, 0, bytes.byteLength, 0);
    return readGltfJson(bytes, fileName, maxDepth, size);
  } finally {
    await handle.close();
  }
}

/**
 * Reads a GLB an earlier stage wrote to the work folder. A missing one means that stage has not run (or
 * the work folder was cleaned): a plain, retryable error that names it, never the artist's fault.
 */
export async function readWorkFile(file: string, producedBy: string): Promise<Document> {
  const io = await assetIO();
  try {
    return (await io.read(file)).setLogger(QUIET_LOGGER);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${path.basename(file)} is missing from the job's work folder: run ${producedBy} first`, { cause: err });
    }
    throw err;
  }
}

/** Writes a GLB so that a reader never sees half a file: a retried or cancelled stage leaves old or nothing. */
export async function writeGlbAtomic(doc: Document, file: string): Promise<number> {
  const io = await assetIO();
  // io.writeBinary(doc) would concatenate header, JSON and binary chunk into one more full copy of the
  // asset; writing the chunks one after the other gives the same bytes without it.
  const { json, resources } = await io.writeJSON(doc, { format: Format.GLB });
  const bin = Object.values(resources)[0];
  return writeGlbChunksAtomic(file, json, bin?.byteLength ? { byteLength: bin.byteLength, parts: [bin] } : null);
}

/**
 * Writes a GLB of a glTF JSON and a binary chunk given as parts of `byteLength` bytes in all, written one
 * after the other as they come (glTF 2.0 GLB layout, 4-byte aligned chunks: JSON padded with spaces, BIN
 * with zeros: byte for byte what glTF-Transform's writeBinary gives). Returns the file's size.
 */
export async function writeGlbChunksAtomic(
  file: string,
  json: unknown,
  bin: { byteLength: number; parts: Iterable<Uint8Array> | AsyncIterable<Uint8Array> } | null,
): Promise<number> {
  const jsonChunk = padTo4(Buffer.from(JSON.stringify(json)), 0x20);
  const binPadding = bin ? (4 - (bin.byteLength % 4)) % 4 : 0;
  const binChunkLength = bin ? bin.byteLength + binPadding : 0;
  const total = 12 + 8 + jsonChunk.byteLength + (bin ? 8 + binChunkLength : 0);
  const header = Buffer.alloc(12 + 8);
  header.writeUInt32LE(GLB_MAGIC, 0);
  header.writeUInt32LE(2, 4);
  header.writeUInt32LE(total, 8);
  header.writeUInt32LE(jsonChunk.byteLength, 12);
  header.writeUInt32LE(GLB_JSON_CHUNK, 16);
  async function* parts(): AsyncGenerator<Uint8Array> {
    yield header;
    yield jsonChunk;
    if (!bin) return;
    const binHeader = Buffer.alloc(8);
    binHeader.writeUInt32LE(binChunkLength, 0);
    binHeader.writeUInt32LE(GLB_BIN_CHUNK, 4);
    yield binHeader;
    let written = 0;
    for await (const part of bin.parts) {
      written += part.byteLength;
      yield part;
    }
    if (written !== bin.byteLength) throw new Error(`GLB binary chunk of ${written} bytes where ${bin.byteLength} were laid out`);
    if (binPadding) yield Buffer.alloc(binPadding);
  }
  await writeFileAtomic(file, parts());
  return total;
}

/** The bytes padded to a multiple of 4 with `fill` (a view when no padding is needed). */
function padTo4(bytes: Uint8Array, fill: number): Uint8Array {
  const padding = (4 - (bytes.byteLength % 4)) % 4;
  if (padding === 0) return bytes;
  const padded = Buffer.alloc(bytes.byteLength + padding, fill);
  padded.set(bytes, 0);
  return padded;
}

/** Writes bytes (or parts of them, one after the other) under a temporary name and renames them into place. */
export async function writeFileAtomic(
  file: string,
  bytes: Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomUUID()}.tmp`;
  try {
    if (typeof bytes === 'string' || bytes instanceof Uint8Array) await fs.writeFile(tmp, bytes);
    else {
      const handle = await fs.open(tmp, 'w');
      try {
        // writeFile goes on from the handle's position and writes each part in full.
        for await (const part of bytes) await handle.writeFile(part);
      } finally {
        await handle.close();
      }
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Reads a JSON file a previous stage wrote, or null when that stage has not run. */
export async function readJsonIfExists<T>(file: string, schema: z.ZodType<T>): Promise<T | null> {
  try {
    return schema.parse(JSON.parse(await fs.readFile(file, 'utf8')));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Removes half-written files (see writeFileAtomic) that an interrupted stage left anywhere under a folder. */
export async function removeTempFiles(dir: string): Promise<void> {
  const names = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.endsWith('.tmp')).map((n) => fs.rm(path.join(dir, n), { force: true })));
}
