import fs from 'node:fs/promises';
import path from 'node:path';
import { type Document, ImageUtils } from '@gltf-transform/core';
import { type AssetLimits, DEFAULT_ASSET_LIMITS } from '../common/config.js';
import { FAILURES } from '../common/failures.js';
import type { ValidationSummary, ValidatorMessage } from '../common/pipeline.js';
import {
  assertUrisStayInUpload,
  type GltfJsonHead,
  KNOWN_EXTENSIONS,
  readGltfJson,
  resolveUploadUri,
  unknownOptionalExtensions,
} from './asset-io.js';
import { textureLabel } from './asset-stats.js';
import { checkKtx2Images, describeValidatorMessage, validateGltfBytes, type ValidationOutcome } from './gltf-validation.js';
import { assetOverLimit, InvalidAssetError } from './invalid-asset-error.js';

/** The upload as a stage sees it. */
interface UploadJob {
  assetName: string;
  mainFile: string;
  inputDir: string;
  fileNames: readonly string[];
  limits?: AssetLimits | undefined;
}

/** Validator codes of a GLB that ends before its chunks do. */
const TRUNCATION_CODES = /^GLB_(UNEXPECTED_END_OF_|LENGTH_MISMATCH|CHUNK_TOO_BIG)/;

const GL_TRIANGLES = 4;
const GL_TRIANGLE_STRIP = 5;
const GL_TRIANGLE_FAN = 6;

/** What the JSON declares, counted defensively (the validator has not looked at it yet). */
export function declaredCounts(head: GltfJsonHead): {
  accessors: number;
  nodes: number;
  primitives: number;
  triangles: number;
  nodeDepth: number;
} {
  const raw = head as Record<string, unknown>;
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const accessors = list(raw.accessors);
  const countOf = (index: unknown): number => {
    const accessor = typeof index === 'number' ? accessors[index] : undefined;
    const count = accessor && typeof accessor === 'object' ? (accessor as { count?: unknown }).count : undefined;
    return typeof count === 'number' && Number.isFinite(count) ? count : 0;
  };
  let primitives = 0;
  let triangles = 0;
  for (const mesh of list(raw.meshes)) {
    for (const prim of list(mesh && typeof mesh === 'object' ? (mesh as { primitives?: unknown }).primitives : undefined)) {
      primitives++;
      if (!prim || typeof prim !== 'object') continue;
      const {
        mode = GL_TRIANGLES,
        indices,
        attributes,
      } = prim as { mode?: unknown; indices?: unknown; attributes?: { POSITION?: unknown } };
      const elements = indices !== undefined ? countOf(indices) : countOf(attributes?.POSITION);
      if (mode === GL_TRIANGLES) triangles += Math.floor(elements / 3);
      else if (mode === GL_TRIANGLE_STRIP || mode === GL_TRIANGLE_FAN) triangles += Math.max(0, elements - 2);
    }
  }
  return { accessors: accessors.length, nodes: list(raw.nodes).length, primitives, triangles, nodeDepth: nodeDepthOf(list(raw.nodes)) };
}

/**
 * The deepest chain of node children, walked breadth-first from the nodes no other node lists as a child,
 * each node once: O(nodes), without recursion. Loops and shared children (the validator's NODE_LOOP and
 * NODE_PARENT_OVERRIDE) are not followed twice.
 */
function nodeDepthOf(nodes: unknown[]): number {
  const childrenOf = (i: number): number[] => {
    const node = nodes[i];
    const children = node && typeof node === 'object' ? (node as { children?: unknown }).children : undefined;
    return Array.isArray(children) ? children.filter((c): c is number => Number.isInteger(c) && c >= 0 && c < nodes.length) : [];
  };
  const isChild = new Uint8Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) for (const c of childrenOf(i)) isChild[c] = 1;
  const depth = new Int32Array(nodes.length);
  let level = nodes.map((_, i) => i).filter((i) => !isChild[i]);
  let deepest = 0;
  while (level.length) {
    deepest++;
    for (const i of level) depth[i] = deepest;
    level = level.flatMap(childrenOf).filter((c) => depth[c] === 0);
  }
  return deepest;
}

/** Refuses an asset over a complexity limit, from its JSON alone: before the validator or any reader. */
export function assertWithinLimits(head: GltfJsonHead, limits: AssetLimits, fileName: string): void {
  const counts = declaredCounts(head);
  const checks: [keyof typeof counts, string, string, string][] = [
    ['accessors', 'ASSET_MAX_ACCESSORS', 'accessors (data arrays)', 'TOO_MANY_ACCESSORS'],
    ['nodes', 'ASSET_MAX_NODES', 'nodes', 'TOO_MANY_NODES'],
    ['primitives', 'ASSET_MAX_PRIMITIVES', 'mesh primitives (draw calls)', 'TOO_MANY_PRIMITIVES'],
    ['triangles', 'ASSET_MAX_TRIANGLES', 'triangles', 'TOO_MANY_TRIANGLES'],
    ['nodeDepth', 'ASSET_MAX_NODE_DEPTH', 'levels of nested nodes', 'NODES_TOO_DEEP'],
  ];
  for (const [key, variable, what, code] of checks) {
    if (counts[key] > limits[key]) {
      throw assetOverLimit(
        `${fileName} has ${counts[key].toLocaleString('en')} ${what}; this farm accepts at most ${limits[key].toLocaleString('en')} (${variable}). ` +
          (key === 'nodeDepth'
            ? 'Flatten the hierarchy in your 3D tool and upload again.'
            : 'Split the asset or merge its parts in your 3D tool, and upload again.'),
        code,
      );
    }
  }
}

/** Refuses textures over the pixel limit by their headers, before anything decodes them (decompression bombs). */
export function assertTexturesWithinLimits(doc: Document, limits: AssetLimits, fileName: string): void {
  for (const [index, texture] of doc.getRoot().listTextures().entries()) {
    const image = texture.getImage();
    let size: [number, number] | null = null;
    try {
      size = image ? ImageUtils.getSize(image, texture.getMimeType()) : null;
    } catch {
      // Unreadable headers are the textures stage's IMAGE_UNREADABLE.
    }
    if (size && size[0] * size[1] > limits.texturePixels) {
      throw assetOverLimit(
        `${fileName}: texture "${textureLabel(texture, index)}" is ${size[0]} × ${size[1]} pixels; this farm accepts at most ${limits.texturePixels.toLocaleString('en')} pixels per texture (ASSET_MAX_TEXTURE_PIXELS). Scale it down and export again.`,
        'TEXTURE_TOO_LARGE',
      );
    }
  }
}

/** Image MIME types of texture extensions, by extension: each the extension's own type. */
const EXTENSION_MIME_TYPES: Record<string, string> = { EXT_texture_avif: 'image/avif', KHR_texture_basisu: 'image/ktx2' };

/**
 * The validator's MIME list predates AVIF and KTX2: it warns VALUE_NOT_IN_LIST for 'image/avif' and
 * 'image/ktx2', which are the types their extensions define, not a mistake, when the asset uses the extension.
 */
function forgiveExtensionMimeTypes(outcome: ValidationOutcome, head: GltfJsonHead): void {
  const allowed = (head.extensionsUsed ?? []).flatMap((e) => (EXTENSION_MIME_TYPES[e] ? [`'${EXTENSION_MIME_TYPES[e]}'`] : []));
  outcome.messages = outcome.messages.filter(
    (m) =>
      !(
        m.code === 'VALUE_NOT_IN_LIST' &&
        /^\/images\/\d+\/mimeType$/.test(m.pointer ?? '') &&
        allowed.some((type) => m.message.includes(type))
      ),
  );
  outcome.warnings = outcome.messages.filter((m) => m.severity === 'warning').length;
}

/**
 * The validator does not know AVIF (EXT_texture_avif): it reports each AVIF image IMAGE_UNRECOGNIZED_FORMAT,
 * which this project's settings make an error (to catch files that are no image at all). An image the
 * asset declares as AVIF under that extension is the textures stage's to decode (sharp reads AVIF, and an
 * unreadable one fails there as IMAGE_UNREADABLE): not an error here.
 */
function forgiveAvifImages(outcome: ValidationOutcome, head: GltfJsonHead): void {
  forgiveExtensionMimeTypes(outcome, head);
  if (!(head.extensionsUsed ?? []).includes('EXT_texture_avif')) return;
  const images = (head as { images?: { mimeType?: unknown; uri?: unknown }[] }).images ?? [];
  const isAvif = (pointer: string | undefined) => {
    const image = images[Number(/^\/images\/(\d+)$/.exec(pointer ?? '')?.[1] ?? -1)];
    return image?.mimeType === 'image/avif' || (typeof image?.uri === 'string' && /\.avif$/i.test(image.uri));
  };
  const forgiven = outcome.errorMessages.filter((m) => m.code === 'IMAGE_UNRECOGNIZED_FORMAT' && isAvif(m.pointer));
  if (!forgiven.length) return;
  outcome.errorMessages = outcome.errorMessages.filter((m) => !forgiven.includes(m));
  outcome.errors -= forgiven.length;
  outcome.messages.push(
    ...forgiven.map((m) => ({
      ...m,
      code: 'AVIF_NOT_VALIDATED',
      severity: 'info' as const,
      message: 'AVIF image: the validator cannot check it; the textures stage decodes it.',
    })),
  );
}

const GLB_BIN_CHUNK = 0x004e4942; // 'BIN\0'

/** The BIN chunk of a GLB (the buffer without a URI), or null for a .gltf or a GLB without one. */
function glbBinChunk(bytes: Uint8Array): Uint8Array | null {
  if (bytes.byteLength < 20) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== 0x46546c67) return null; // 'glTF'
  const end = Math.min(view.getUint32(8, true), bytes.byteLength);
  const second = 20 + view.getUint32(12, true);
  if (second + 8 > end || view.getUint32(second + 4, true) !== GLB_BIN_CHUNK) return null;
  return bytes.subarray(second + 8, Math.min(end, second + 8 + view.getUint32(second, true)));
}

/**
 * The bytes of the upload's KTX2 images (by their JSON index), read straight from the JSON's buffer views,
 * data: URIs or the upload's own files: glTF-Validator cannot read KTX2, and no glTF library has read the
 * upload yet. Other images, and ones whose bytes cannot be found, are null (the validator's error stands).
 */
async function ktx2ImagesOf(
  bytes: Uint8Array,
  head: GltfJsonHead,
  job: UploadJob,
): Promise<{ mimeType: string; image: Uint8Array | null }[]> {
  type RawImage = { mimeType?: unknown; uri?: unknown; bufferView?: unknown };
  type RawView = { buffer?: unknown; byteOffset?: unknown; byteLength?: unknown };
  const raw = head as { images?: RawImage[]; bufferViews?: RawView[]; buffers?: { uri?: string }[] };
  const buffers = new Map<number, Promise<Uint8Array | null>>();
  const resource = async (uri: string): Promise<Uint8Array | null> => {
    const data = /^data:[^,]*?(;base64)?,(.*)$/is.exec(uri);
    if (data) return data[1] ? Buffer.from(data[2]!, 'base64') : Buffer.from(decodeURIComponent(data[2]!));
    const file = resolveUploadUri(uri, job.inputDir, job.fileNames);
    return file ? fs.readFile(file) : null;
  };
  const bufferOf = (index: number): Promise<Uint8Array | null> => {
    if (!buffers.has(index)) {
      const uri = raw.buffers?.[index]?.uri;
      buffers.set(index, uri === undefined ? Promise.resolve(index === 0 ? glbBinChunk(bytes) : null) : resource(uri));
    }
    return buffers.get(index)!;
  };
  return Promise.all(
    (raw.images ?? []).map(async (image) => {
      const ktx2 = image.mimeType === 'image/ktx2' || (typeof image.uri === 'string' && /\.ktx2$/i.test(image.uri));
      if (!ktx2) return { mimeType: String(image.mimeType ?? ''), image: null };
      if (typeof image.uri === 'string') return { mimeType: 'image/ktx2', image: await resource(image.uri) };
      const view = typeof image.bufferView === 'number' ? raw.bufferViews?.[image.bufferView] : undefined;
      const buffer = typeof view?.buffer === 'number' ? await bufferOf(view.buffer) : null;
      const offset = typeof view?.byteOffset === 'number' ? view.byteOffset : 0;
      const length = typeof view?.byteLength === 'number' ? view.byteLength : -1;
      const fits = buffer && length >= 0 && offset + length <= buffer.byteLength;
      return { mimeType: 'image/ktx2', image: fits ? buffer.subarray(offset, offset + length) : null };
    }),
  );
}

/** The InvalidAsset failure for a validator outcome with errors: every error as details, the first in words. */
function validationFailure(assetName: string, outcome: ValidationOutcome): InvalidAssetError {
  const first = outcome.errorMessages[0];
  // A file cut short is a transfer's fault, not the model's: the 3D tool has nothing to fix.
  const cutShort = outcome.errorMessages.some((m) => TRUNCATION_CODES.test(m.code));
  return new InvalidAssetError(
    `${assetName} is not valid glTF: glTF-Validator found ${outcome.errors} error${outcome.errors > 1 ? 's' : ''}` +
      (first ? `, the first ${describeValidatorMessage(first)}` : '') +
      (cutShort
        ? '. The file ends early, as an interrupted upload or copy leaves it: upload the complete file again.'
        : '. Fix it in your 3D tool (or its glTF exporter settings), export again and upload the new file.'),
    outcome.errorMessages,
  );
}

/** The validator's errors for bytes our own reading refused, or our refusal when the validator has none. */
async function validatorVerdict(bytes: Uint8Array, job: UploadJob, refusal: InvalidAssetError): Promise<InvalidAssetError> {
  const outcome = await validateGltfBytes(bytes, { uri: job.mainFile }).catch((err: unknown) => {
    if (err instanceof InvalidAssetError) return null;
    throw err;
  });
  return outcome && outcome.errors > 0 ? validationFailure(job.assetName, outcome) : refusal;
}

/**
 * The upload's verdict, before any glTF library reads it: container and JSON shape, URIs that stay in the
 * upload, the complexity limits, then the Khronos glTF-Validator. Errors fail the job (InvalidAsset, every
 * validator error as details, the first in the message); warnings and notes are returned for the report.
 */
export async function validateUpload(job: UploadJob): Promise<ValidationSummary> {
  const limits = job.limits ?? DEFAULT_ASSET_LIMITS;
  const bytes = await fs.readFile(path.join(job.inputDir, job.mainFile));
  let head: GltfJsonHead;
  try {
    head = readGltfJson(bytes, job.mainFile, limits.jsonDepth);
  } catch (err) {
    // A broken container or JSON: the validator's codes and byte offsets say it best. It is run without
    // access to any other file, since the URIs could not be checked.
    if (err instanceof InvalidAssetError && err.code === FAILURES.INVALID_ASSET.code) throw await validatorVerdict(bytes, job, err);
    throw err;
  }
  assertUrisStayInUpload(head, job.inputDir, job.fileNames);
  assertWithinLimits(head, limits, job.mainFile);
  const outcome = await validateGltfBytes(bytes, {
    uri: job.mainFile,
    processable: KNOWN_EXTENSIONS,
    resolve: async (uri) => {
      const file = resolveUploadUri(uri, job.inputDir, job.fileNames);
      if (!file) throw new Error(`Not an external resource: ${uri.slice(0, 40)}`);
      return fs.readFile(file);
    },
  });
  forgiveAvifImages(outcome, head);
  // KHR_texture_basisu images (the pipeline's own KTX2 outputs among them): checked by ktx-parse instead.
  const checked = outcome.errorMessages.some((m) => m.code === 'IMAGE_UNRECOGNIZED_FORMAT')
    ? checkKtx2Images(outcome, await ktx2ImagesOf(bytes, head, job))
    : outcome;
  if (checked.errors > 0) throw validationFailure(job.assetName, checked);
  // The validator says only that it cannot check an unknown extension; what matters is that it is dropped.
  const dropped = new Set(unknownOptionalExtensions(head));
  const droppedMessage = (name: string, pointer?: string): ValidatorMessage => ({
    code: 'EXTENSION_DROPPED',
    message: `${name} is an optional extension this pipeline does not know: the outputs do not carry it.`,
    severity: 'warning',
    ...(pointer ? { pointer } : {}),
  });
  const said = new Set<string>();
  const messages = checked.messages.flatMap((m): ValidatorMessage[] => {
    const name = /'([A-Za-z0-9_]+)'/.exec(m.message)?.[1];
    if (m.code !== 'UNSUPPORTED_EXTENSION' || !name || !dropped.has(name)) return [m];
    said.add(name);
    return [droppedMessage(name, m.pointer)];
  });
  // One the validator knows (KHR_animation_pointer) draws no UNSUPPORTED_EXTENSION, but is dropped all the same.
  for (const name of dropped) if (!said.has(name)) messages.push(droppedMessage(name, '/extensionsUsed'));
  return { errors: 0, warnings: messages.filter((m) => m.severity === 'warning').length, messages };
}
