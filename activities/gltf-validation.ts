import validator from 'gltf-validator';
import {
  KHR_DF_MODEL_ETC1S,
  KHR_DF_MODEL_UASTC,
  KHR_SUPERCOMPRESSION_BASISLZ,
  KHR_SUPERCOMPRESSION_NONE,
  KHR_SUPERCOMPRESSION_ZSTD,
  read as readKtx2,
} from 'ktx-parse';
import { z } from 'zod';
import type { ValidationSummary, ValidatorMessage } from '../common/pipeline.js';
import { invalidAsset } from './invalid-asset-error.js';

const SEVERITIES = ['error', 'warning', 'info', 'hint'] as const;

const ValidatorReport = z.object({
  issues: z.object({
    numErrors: z.number().int(),
    numWarnings: z.number().int(),
    messages: z.array(
      z.object({
        code: z.string(),
        message: z.string(),
        severity: z.number().int().min(0).max(3),
        pointer: z.string().optional(),
        /** GLB-level messages locate the problem by byte offset instead of a JSON pointer. */
        offset: z.number().int().optional(),
      }),
    ),
    truncated: z.boolean().optional(),
  }),
});

/** Validator results with every message kept (errors included), for the caller to decide what fails. */
export interface ValidationOutcome extends ValidationSummary {
  errorMessages: ValidatorMessage[];
}

/** Messages kept in a summary: enough to act on, bounded so a broken asset cannot bloat the history. */
const MAX_KEPT_MESSAGES = 200;

/**
 * Validator notes that are true but not a problem for this pipeline, shown as `info` rather than warnings:
 * tangents engines generate themselves, and non-power-of-two image sizes every current engine takes. The
 * artist reads warnings as "something is wrong"; these are not.
 */
const NOTE_CODES: ReadonlySet<string> = new Set(['MESH_PRIMITIVE_GENERATED_TANGENT_SPACE', 'IMAGE_NPOT_DIMENSIONS']);

/**
 * Messages that say nothing about the outputs: layout infos ("this object may be unused"), and image
 * metadata (colour profiles, animation) the textures stage drops when it re-encodes (BoxTextured's PNG was
 * told "cannot be read" for it, though it was read and converted).
 */
const LAYOUT_CODES: ReadonlySet<string> = new Set(['UNUSED_OBJECT', 'IMAGE_FEATURES_UNSUPPORTED']);

/**
 * Runs the Khronos glTF-Validator on a file's bytes. `resolve` loads external resources; it must only ever
 * return the upload's own files. Images that are not images count as errors: the pipeline cannot resize them.
 * `processable` names the extensions the pipeline reads and writes: the validator cannot check every one
 * of them (it reports UNSUPPORTED_EXTENSION for Draco and meshopt), but that is the validator's limit, not
 * the asset's, so those messages are left out.
 */
export async function validateGltfBytes(
  bytes: Uint8Array,
  options: { uri: string; resolve?: (uri: string) => Promise<Uint8Array>; processable?: ReadonlySet<string> },
): Promise<ValidationOutcome> {
  let raw: unknown;
  try {
    raw = await validator.validateBytes(bytes, {
      uri: options.uri,
      maxIssues: 1000,
      writeTimestamp: false,
      severityOverrides: { IMAGE_UNRECOGNIZED_FORMAT: 0 },
      externalResourceFunction: options.resolve ?? ((uri) => Promise.reject(new Error(`External resource ${uri} not available`))),
    });
  } catch (err) {
    // The validator rejects (with a string) when it cannot even tell whether the bytes are glTF or GLB.
    throw invalidAsset(`${options.uri} is neither glTF JSON nor GLB: ${String(err)}`, 'UNRECOGNIZED_FORMAT');
  }
  const report = ValidatorReport.parse(raw);
  const processable = options.processable ?? new Set<string>();
  const messages = report.issues.messages.flatMap((m): ValidatorMessage[] => {
    if (LAYOUT_CODES.has(m.code)) return [];
    const extension = /'([A-Za-z0-9_]+)'/.exec(m.message)?.[1];
    if (m.code === 'UNSUPPORTED_EXTENSION' && extension && processable.has(extension)) return [];
    const severity = NOTE_CODES.has(m.code) && m.severity < 2 ? 'info' : (SEVERITIES[m.severity] ?? 'info');
    return [
      {
        code: m.code,
        message: m.message,
        severity: m.severity === 0 ? 'error' : severity,
        ...(m.pointer ? { pointer: m.pointer } : {}),
        ...(m.offset !== undefined ? { offset: m.offset } : {}),
      },
    ];
  });
  return {
    errors: report.issues.numErrors,
    warnings: messages.filter((m) => m.severity === 'warning').length,
    messages: messages.filter((m) => m.severity !== 'error').slice(0, MAX_KEPT_MESSAGES),
    errorMessages: messages.filter((m) => m.severity === 'error').slice(0, MAX_KEPT_MESSAGES),
  };
}

/** Where a message points, in words: its JSON pointer, or the byte offset of a GLB-level problem. */
export function messageLocation(m: ValidatorMessage): string {
  if (m.pointer) return `at ${m.pointer}`;
  if (m.offset !== undefined) return `at byte ${m.offset}`;
  return 'in the file';
}

/** One validator message as a plain sentence: code, where, and what, without doubled full stops. */
export function describeValidatorMessage(m: ValidatorMessage): string {
  return `${m.code} ${messageLocation(m)}: ${m.message.trim().replace(/\.+$/, '')}`;
}

/**
 * What is wrong with a KTX2 image for KHR_texture_basisu, or null when nothing is: a 2D KTX2 container
 * (one layer, one face) with a Basis Universal payload (ETC1S in BasisLZ, or UASTC uncompressed or in
 * Zstandard), sides multiples of 4.
 */
export function basisuImageProblem(image: Uint8Array): string | null {
  let ktx: ReturnType<typeof readKtx2>;
  try {
    // A copy (Buffer.slice would be a view): ktx-parse reads through the view to its underlying buffer, so
    // a cut-short image inside a GLB's BIN chunk would be read on into the bytes after it.
    ktx = readKtx2(new Uint8Array(image));
  } catch (err) {
    return `not a readable KTX2 container (${(err as Error).message})`;
  }
  const model = ktx.dataFormatDescriptor[0]?.colorModel;
  const scheme = ktx.supercompressionScheme;
  const etc1s = model === KHR_DF_MODEL_ETC1S && scheme === KHR_SUPERCOMPRESSION_BASISLZ;
  const uastc = model === KHR_DF_MODEL_UASTC && (scheme === KHR_SUPERCOMPRESSION_NONE || scheme === KHR_SUPERCOMPRESSION_ZSTD);
  if (!etc1s && !uastc) return `not Basis Universal (colour model ${model}, supercompression ${scheme})`;
  if (ktx.layerCount > 1 || ktx.faceCount !== 1 || ktx.pixelDepth > 1) return 'not a 2D texture (layers, faces or depth)';
  if (ktx.pixelWidth % 4 || ktx.pixelHeight % 4) return `${ktx.pixelWidth} × ${ktx.pixelHeight} pixels: sides must be multiples of 4`;
  return null;
}

/**
 * glTF-Validator (2.0.0-dev.3.10) recognises KTX2 by its signature but has no reader for it: it reports every
 * KTX2 image IMAGE_UNRECOGNIZED_FORMAT, an error under this project's severity override. For each such image
 * declared image/ktx2, `images` (the file's images in order, as glTF-Transform writes one per texture) is
 * checked here instead (basisuImageProblem): a sound one becomes an info note, a broken one stays an error
 * saying what is wrong.
 */
export function checkKtx2Images(outcome: ValidationOutcome, images: { mimeType: string; image: Uint8Array | null }[]): ValidationOutcome {
  const errorMessages: ValidatorMessage[] = [];
  const notes: ValidatorMessage[] = [];
  for (const m of outcome.errorMessages) {
    const image = images[Number(/^\/images\/(\d+)$/.exec(m.pointer ?? '')?.[1] ?? -1)];
    if (m.code !== 'IMAGE_UNRECOGNIZED_FORMAT' || image?.mimeType !== 'image/ktx2' || !image.image) {
      errorMessages.push(m);
      continue;
    }
    const problem = basisuImageProblem(image.image);
    if (problem) errorMessages.push({ ...m, code: 'KTX2_INVALID', message: `KTX2 image ${problem}.` });
    else
      notes.push({
        ...m,
        code: 'KTX2_CHECKED',
        severity: 'info',
        message: 'KTX2 image: the validator cannot read KTX2; checked as Basis Universal by ktx-parse.',
      });
  }
  return {
    ...outcome,
    errors: outcome.errors - (outcome.errorMessages.length - errorMessages.length),
    errorMessages,
    messages: [...outcome.messages, ...notes].slice(0, MAX_KEPT_MESSAGES),
  };
}
