/**
 * The one catalogue of failures, the way ws names its errors (`WS_ERR_INVALID_CLOSE_CODE`): every failure
 * the farm reports has a stable UPPER_SNAKE code, whether trying again can help, and the sentence the
 * artist reads. The same code is an activity's ApplicationFailure type, the `error.type` of a `failed`
 * event, the `error.code` of an HTTP error body and the `code` of a socket `error` frame; the page and
 * the CLI parse it with `FailureCode` (common/failures.ts, a z.enum of these keys). Add a failure here
 * and nowhere else. Plain data, no zod: the workflow bundle imports it (workflows/failure-reasons.ts),
 * and every module the bundle imports is evaluated again for each workflow the worker creates.
 */
interface FailureEntry {
  /** True when the same job or request can succeed later unchanged (the page offers Retry only then). */
  readonly retryable: boolean;
  /** What happened, for the artist; a raise site may give a more specific message of its own. */
  readonly message: string;
  /** What the artist can do about it. */
  readonly advice: string;
  /** Heading of a failed job's card (job failures only). */
  readonly title?: string;
}

const CATALOGUE = {
  // A job's failure: the `error.type` of its `failed` event and the ApplicationFailure type behind it.
  INVALID_ASSET: {
    retryable: false,
    title: "This asset can't be processed",
    message: 'The uploaded model is not valid glTF and cannot be processed.',
    advice: 'Fix the model in your 3D tool, export it again and upload the new file.',
  },
  UNSUPPORTED_ASSET: {
    retryable: false,
    title: "The farm can't process this asset yet",
    message: 'The model is valid glTF, but it uses something this pipeline cannot process.',
    advice: 'Export it without the feature the message names, or tell an engineer which feature you need.',
  },
  ASSET_LIMIT: {
    retryable: false,
    title: 'This asset is over the farm’s limits',
    message: 'The model is larger or more complex than this farm accepts.',
    advice: 'Reduce what the message names (split the asset, merge parts, scale textures down) and upload again.',
  },
  INVALID_OPTIONS: {
    retryable: false,
    title: 'The job settings are not valid',
    message: 'The job options are not valid.',
    advice: 'Upload again with other settings.',
  },
  INVALID_BATCH: {
    retryable: false,
    title: 'The batch is not valid',
    message: 'The batch of assets is not valid.',
    advice: 'Send the batch again with one entry per asset.',
  },
  STORAGE: {
    retryable: true,
    title: "The farm couldn't store the files",
    message: 'The processing machine could not read or write the job files (disk full or not writable).',
    advice: 'This is not a problem with your asset. Retry the job in a few minutes; if it fails again, tell an engineer.',
  },
  OUTPUT_INVALID: {
    retryable: false,
    title: 'The farm produced a broken file',
    message: 'A processed output failed validation: a fault in the farm, not in your asset.',
    advice: 'Retrying would produce the same file. Tell an engineer and give them the job id.',
  },
  ENCODER_UNAVAILABLE: {
    retryable: false,
    title: "The farm can't write the texture format you chose",
    message: 'The processing machine has no working encoder for the texture format the job asks for.',
    advice: 'Choose another texture format (WebP or Keep) and upload again, or ask an engineer to install the encoder.',
  },
  MODEL_UNREADABLE: {
    retryable: false,
    title: "Blender can't read this file",
    message: 'The uploaded FBX, OBJ or .blend file could not be read by Blender, or holds no geometry.',
    advice:
      'Open it in your 3D tool, export it again (FBX binary 7.x, OBJ with its MTL and textures, or a saved .blend) and upload the new file.',
  },
  BLENDER_UNAVAILABLE: {
    retryable: false,
    title: "The farm can't convert this format",
    message: 'FBX, OBJ and .blend uploads and turntable previews need Blender, and the processing machine has none.',
    advice: 'Export the model as .glb or .gltf and upload that, or ask an engineer to set up Blender on the farm (RUNBOOK.md, "Blender").',
  },
  STAGE_PROCESS_FAILED: {
    retryable: true,
    title: 'A processing step failed',
    message: 'A program the pipeline runs as one of its steps failed on the farm.',
    advice: 'Retry the job; if it fails again, tell an engineer and give them the job id (the failure shows the program’s last output).',
  },
  STAGE_TOOL_MISSING: {
    retryable: false,
    title: 'The farm is missing a tool',
    message: 'A program the pipeline runs as one of its steps is not installed on the processing machine.',
    advice: 'Tell an engineer which step failed; once the tool is installed, retry the job.',
  },
  INVALID_REQUEST: {
    retryable: false,
    title: 'The job failed',
    message: 'A processing stage was sent a request it does not accept: a fault in the farm.',
    advice: 'Tell an engineer and give them the job id.',
  },
  MISCONFIGURED_ACTIVITY: {
    retryable: false,
    title: 'The job failed',
    message: 'A processing stage ran outside an asset job: a fault in the farm setup.',
    advice: 'Tell an engineer and give them the job id.',
  },
  STOP_NOT_CONFIRMED: {
    retryable: true,
    title: 'The job failed',
    message: 'A stage stopped on a cancel request that never came; it runs again from its last checkpoint.',
    advice: 'Retry the job; if it fails again, tell an engineer and give them the job id.',
  },
  TIMEOUT: {
    retryable: true,
    title: 'The job took too long',
    message: 'A processing stage took too long and was stopped.',
    advice: 'Retry the job, or choose a lighter preset.',
  },
  INTERNAL: {
    retryable: true,
    title: 'The job failed',
    message: 'Something went wrong on the farm.',
    advice: 'Retry the job; if it fails again, tell an engineer and give them the job id.',
  },

  // An HTTP request's failure: the `error.code` of the API's JSON error body.
  NOT_FOUND: { retryable: false, message: 'No such route.', advice: 'Check the address.' },
  BAD_REQUEST: { retryable: false, message: 'The request body is not valid JSON.', advice: 'Send a JSON body.' },
  BODY_TOO_LARGE: { retryable: false, message: 'The request body is too large.', advice: 'JSON bodies are limited to 16 KiB.' },
  BAD_USER: { retryable: false, message: 'The user name is not valid.', advice: 'Use letters, digits and . _ @ - only.' },
  BAD_QUERY: { retryable: false, message: 'The query is not valid.', advice: 'limit is 1-100 and before a previous page’s nextBefore.' },
  BAD_OPTIONS: { retryable: false, message: 'The job options are not valid.', advice: 'Correct the options and upload again.' },
  AUTH_MISSING: { retryable: false, message: 'Sign in first.', advice: 'Send the access token as a bearer token.' },
  AUTH_INVALID: { retryable: false, message: 'The access token is not valid.', advice: 'Sign in again.' },
  AUTH_EXPIRED: { retryable: false, message: 'Your session has expired.', advice: 'Sign in again.' },
  TOO_MANY_UPLOADS: {
    retryable: true,
    message: 'Too many files uploaded in a short time.',
    advice: 'Wait a moment and upload again.',
  },
  TOO_MANY_JOBS: { retryable: true, message: 'Too many uploads and retries in a short time.', advice: 'Wait a moment and upload again.' },
  TOO_MANY_LOGINS: { retryable: true, message: 'Too many sign-ins from this address.', advice: 'Wait a minute and sign in again.' },
  JOB_NOT_FOUND: { retryable: false, message: 'No such job.', advice: 'Check the job id; jobs of other users are not shown.' },
  JOB_NOT_RUNNING: { retryable: false, message: 'The job is not running.', advice: 'Only a running job can be cancelled.' },
  JOB_NOT_RETRYABLE: {
    retryable: false,
    message: 'Only a failed, cancelled or stopped job can be retried.',
    advice: 'Wait for the job to finish.',
  },
  PRIORITY_NOT_ALLOWED: {
    retryable: false,
    message: 'Urgent jobs are reserved for the people the studio allows to jump the queue.',
    advice: 'Submit it as normal (or background), or ask an engineer for the urgent role.',
  },
  NO_OUTPUTS: { retryable: false, message: 'This job has no outputs yet.', advice: 'Wait until the job has completed.' },
  OUTPUT_NOT_FOUND: { retryable: false, message: 'This job has no such output.', advice: 'List the outputs at the job’s /outputs.' },
  INPUT_NOT_FOUND: { retryable: false, message: 'This job has no such uploaded file.', advice: 'List them at the job’s /inputs.' },
  UPLOAD_NOT_MULTIPART: {
    retryable: false,
    message: 'The upload is not multipart/form-data.',
    advice: 'Send the asset as multipart/form-data with one or more "files" parts.',
  },
  UPLOAD_NO_MODEL: {
    retryable: false,
    message: 'The upload has no model file (.glb, .gltf, .fbx, .obj or .blend).',
    advice: 'Attach the model file.',
  },
  UPLOAD_EMPTY: {
    retryable: false,
    message: 'The upload has no files.',
    advice: 'Attach the .glb, or the .gltf with its .bin and textures.',
  },
  UPLOAD_BAD_FILE: { retryable: false, message: 'A file of the upload is not acceptable.', advice: 'Rename or remove the file.' },
  UPLOAD_TOO_LARGE: { retryable: false, message: 'The upload is too large.', advice: 'Reduce the asset’s size, or ask an engineer.' },
  UPLOAD_FIELD_TOO_LARGE: { retryable: false, message: 'A form field of the upload is too large.', advice: 'Send shorter options.' },
  UPLOAD_DUPLICATE_NAME: {
    retryable: false,
    message: 'Two files of the upload have the same name.',
    advice: 'Give each file its own name.',
  },
  UPLOAD_TOO_MANY_MODELS: {
    retryable: false,
    message: 'The upload has more than one model file.',
    advice: 'Upload one model per job (.glb, .gltf, .fbx, .obj or .blend), with the files it refers to (.bin, .mtl, textures).',
  },
  BAD_URL: { retryable: false, message: 'The address is not valid.', advice: 'Check the address: a % must start a valid escape like %20.' },
  UPLOAD_TOO_MANY_FILES: { retryable: false, message: 'The upload has too many files.', advice: 'Upload one asset per job.' },
  UPLOAD_MALFORMED: { retryable: false, message: 'The upload could not be read.', advice: 'Upload the files again.' },
  UPLOAD_ABORTED: {
    retryable: true,
    message: 'The upload was interrupted before it finished.',
    advice: 'Nothing was kept: upload the files again.',
  },
  UPLOAD_NOT_FOUND: {
    retryable: false,
    message: 'A file the job names is not among your finished uploads.',
    advice: 'Upload the file again (a finished upload waits a day for its job), then start the job.',
  },
  UPLOAD_NOT_HELD: {
    retryable: false,
    message: 'The farm holds no upload of yours with these bytes.',
    advice: 'Upload the file (POST /api/uploads).',
  },
  UPLOAD_HASH_MISMATCH: {
    retryable: false,
    message: 'The bytes received do not have the sha256 the client announced.',
    advice: 'The file changed while it was uploading, or was damaged on the way: upload it again.',
  },

  // A socket's failure: the `code` of an `error` frame on /ws (docs/PROTOCOL.md).
  BAD_MESSAGE: { retryable: false, message: 'The message is not valid.', advice: 'See docs/PROTOCOL.md for the messages a client sends.' },
  UNAVAILABLE: { retryable: true, message: 'Live progress is unavailable for a moment.', advice: 'Reconnect; progress resumes.' },
  TOO_MANY_SUBSCRIPTIONS: {
    retryable: false,
    message: 'This page follows too many jobs one by one.',
    advice: 'Unsubscribe from finished jobs, or follow all of them with subscribeAll.',
  },
} as const satisfies Record<string, FailureEntry>;

/** Every failure's stable code. */
export type FailureCode = keyof typeof CATALOGUE;
export const FAILURE_CODES = Object.keys(CATALOGUE) as [FailureCode, ...FailureCode[]];

/** One failure of the catalogue, with its code. */
export type Failure<C extends FailureCode = FailureCode> = FailureEntry & (typeof CATALOGUE)[C] & { readonly code: C };

/** The catalogue by code: `FAILURES.INVALID_ASSET.code`, `.retryable`, `.message`, `.advice`. */
export const FAILURES = Object.fromEntries(FAILURE_CODES.map((code) => [code, { ...CATALOGUE[code], code }])) as {
  readonly [C in FailureCode]: Failure<C>;
};

/** Codes a job can fail with: the `error.type` of a `failed` event. */
export const JOB_FAILURE_CODES = [
  'INVALID_ASSET',
  'UNSUPPORTED_ASSET',
  'ASSET_LIMIT',
  'INVALID_OPTIONS',
  'INVALID_BATCH',
  'STORAGE',
  'OUTPUT_INVALID',
  'ENCODER_UNAVAILABLE',
  'MODEL_UNREADABLE',
  'BLENDER_UNAVAILABLE',
  'STAGE_PROCESS_FAILED',
  'STAGE_TOOL_MISSING',
  'INVALID_REQUEST',
  'MISCONFIGURED_ACTIVITY',
  'STOP_NOT_CONFIRMED',
  'TIMEOUT',
  'INTERNAL',
] as const satisfies readonly FailureCode[];
export type JobFailureCode = (typeof JOB_FAILURE_CODES)[number];

/**
 * A job failure's code: a code this build does not know (a newer producer, or a pre-catalogue entry in a
 * replay log), or no code at all, reads as INTERNAL instead of dropping the whole frame.
 */
export function jobFailureCodeOf(type: unknown): JobFailureCode {
  return (JOB_FAILURE_CODES as readonly unknown[]).includes(type) ? (type as JobFailureCode) : 'INTERNAL';
}

/** The catalogue entry of a code, or INTERNAL for one this build does not know. */
export function failureOf(code: string | undefined): Failure {
  return code !== undefined && Object.hasOwn(FAILURES, code) ? FAILURES[code as FailureCode] : FAILURES.INTERNAL;
}

/** errno codes that mean the machine's storage refused a write: full, not permitted, read-only. */
const STORAGE_ERRNOS: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS']);

/** True for a file-system error that is the storage's fault, not the input's (ENOSPC, EACCES, EROFS…). */
export function isStorageError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_ERRNOS.has(code);
}
