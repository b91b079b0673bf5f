import { ValidatorMessage } from '../../common/pipeline.js';
import { failureOf } from '../../common/failures.js';

/** What went wrong and what to do, in an artist's words. One place maps every failure the page can show. */
export interface ArtistMessage {
  title: string;
  /** What to do about it. */
  advice: string;
  /** Specific findings (validator messages), already in plain words. */
  details: string[];
  /** Whether running the job again can succeed (the catalogue's flag): Retry is offered only then. */
  retryable: boolean;
}

/** glTF-Validator codes grouped by what an artist can do about them (code prefix → plain explanation). */
const VALIDATOR_EXPLANATIONS: [RegExp, string][] = [
  [
    /^(IO_ERROR|URI_|.*_URI)/,
    'a file the model refers to is missing or could not be opened; upload the .gltf together with its .bin and textures',
  ],
  [/^(BUFFER_|BUFFER_VIEW_|ACCESSOR_)/, 'the geometry data is damaged or does not match what the model describes; re-export the model'],
  [/^IMAGE_/, 'a texture image cannot be read; save it again as PNG or JPEG and re-export'],
  [/^(MESH_|NODE_)/, 'a mesh or node is set up in a way engines cannot use; check the mesh in your 3D tool and re-export'],
  [/^(MATERIAL|TEXTURE)/, 'a material or texture setting is invalid; check the material in your 3D tool'],
  [
    /^(INVALID_GLB|GLB_|FILE_|JSON_|INVALID_JSON)/,
    'the file is not a valid glTF/GLB (it may be truncated or another format); export it again',
  ],
  [/^(UNSUPPORTED_EXTENSION|UNUSED_EXTENSION|EXTENSION)/, 'the model uses a glTF extension the farm does not support; export without it'],
];

/**
 * Notes the validator gives about a model that processed fine: said for what they are, never in the
 * words of a failure (a Draco model is supported even though the validator cannot check Draco data).
 */
const VALIDATOR_NOTES: Record<string, string> = {
  UNSUPPORTED_EXTENSION: 'the validator cannot check the data of this extension; the farm still processed it',
  MESH_PRIMITIVE_GENERATED_TANGENT_SPACE:
    'the model has no tangents, so engines compute their own; normal maps may shade slightly differently than in your 3D tool',
};

/**
 * One validator message as a sentence an artist understands, keeping the original for an engineer. The
 * plain explanations of what is broken are for errors; a warning or info is said as the note it is.
 */
export function explainValidatorMessage(detail: {
  code: string;
  message: string;
  severity?: ValidatorMessage['severity'];
  pointer?: string | undefined;
}): string {
  const isError = detail.severity === undefined || detail.severity === 'error';
  const plain = isError ? VALIDATOR_EXPLANATIONS.find(([pattern]) => pattern.test(detail.code))?.[1] : VALIDATOR_NOTES[detail.code];
  const where = detail.pointer ? ` (at ${detail.pointer})` : '';
  return plain ? `${capitalise(plain)}. Validator: ${detail.message}${where}` : `${detail.message}${where}`;
}

/** Validator codes of a file that ends early: the upload or the export was cut short, the model itself may be fine. */
const TRUNCATED_FILE = /UNEXPECTED_END|LENGTH_MISMATCH|LENGTH_TOO_SMALL|TRUNCATED/;

/**
 * The failed event's error, for the job card: the catalogue's title and advice for its code
 * (common/failures.ts), each finding once.
 */
export function explainJobFailure(error: { type: string; message: string; details?: unknown[] | undefined } | undefined): ArtistMessage {
  const failure = failureOf(error?.type);
  const findings = (error?.details ?? []).flatMap((d) => {
    const parsed = ValidatorMessage.safeParse(d);
    return parsed.success ? [parsed.data] : [];
  });
  const message = error?.message ?? failure.message;
  // A single problem found outside glTF-Validator comes with a detail repeating the message: say it once.
  const details = findings.filter((d) => d.message !== message).map(explainValidatorMessage);
  const truncated = findings.length > 0 && findings.every((d) => TRUNCATED_FILE.test(d.code));
  const advice = truncated
    ? 'The file ends early: it was cut short while uploading or saving. Upload it again; if the same happens, export it again.'
    : failure.advice;
  // Messages the workflow took from the catalogue already end with its advice.
  const text = message.includes(advice) ? sentence(message) : `${sentence(message)} ${advice}`;
  return { title: failure.title ?? 'The job failed', advice: text, details, retryable: failure.retryable };
}

/** Ends a server message with a full stop so the advice after it reads as its own sentence. */
function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
