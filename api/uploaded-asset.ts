import { FAILURES } from '../common/failures.js';
import type { AssetFile, AssetStorage } from '../storage/asset-storage.js';
import { UploadTooLargeError } from '../storage/asset-storage.js';
import type { FinishedUploads } from './finished-uploads.js';
import { JobStartBody } from '../common/uploads.js';
import { AssetFileNames, UploadError, type ParsedUpload, type UploadLimits } from './upload.js';

/**
 * The asset a JSON job start names, with the same checks as a multipart upload (names, count, total
 * size) and each upload id checked to be the caller's own finished upload whose bytes are still stored.
 */
export async function receiveUploadedAsset(
  body: unknown,
  owner: string,
  deps: { uploads: FinishedUploads; storage: AssetStorage; limits: UploadLimits },
): Promise<ParsedUpload> {
  const parsed = JobStartBody.safeParse(body);
  if (!parsed.success)
    throw new UploadError(
      400,
      FAILURES.BAD_REQUEST.code,
      'Send {"files":[{"uploadId":"<id from POST /api/uploads>","name":"model.glb"}],"options":{"preset":"game-ready"}}.',
    );
  const { files: refs, options, preset } = parsed.data;
  if (refs.length === 0)
    throw new UploadError(
      400,
      FAILURES.UPLOAD_EMPTY.code,
      'The job names no files; upload the .glb, or the .gltf with its .bin and textures.',
    );
  if (refs.length > deps.limits.maxFiles)
    throw new UploadError(
      400,
      FAILURES.UPLOAD_TOO_MANY_FILES.code,
      `At most ${deps.limits.maxFiles} files per asset; this job names more.`,
    );
  const names = new AssetFileNames();
  for (const ref of refs) {
    const refusal = names.refusal(ref.name);
    if (refusal) throw refusal;
  }
  const files: AssetFile[] = [];
  let total = 0;
  for (const ref of refs) {
    const blob = await deps.uploads.get(owner, ref.uploadId);
    // The same answer for an id that never existed, expired, or is someone else's.
    if (!blob || !(await deps.storage.hasUpload(blob)))
      throw new UploadError(
        400,
        FAILURES.UPLOAD_NOT_FOUND.code,
        `${JSON.stringify(ref.name)} (upload ${ref.uploadId}) is not among your finished uploads; upload it again, then start the job.`,
      );
    total += blob.size;
    if (total > deps.limits.maxBytes)
      throw new UploadError(413, FAILURES.UPLOAD_TOO_LARGE.code, new UploadTooLargeError(deps.limits.maxBytes).message);
    files.push({ name: ref.name, ...blob });
  }
  const fields: Record<string, string> = { ...(options ? { options: JSON.stringify(options) } : {}), ...(preset ? { preset } : {}) };
  // The blobs were kept when their uploads finished: a refused start leaves them for the next try.
  return { files, fields, settle: () => Promise.resolve() };
}
