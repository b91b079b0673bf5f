import { z } from 'zod';

/**
 * Resumable uploads (tus, POST /api/uploads) and the JSON job start that names them: one definition for
 * the API, the page and the CLI (docs/PROTOCOL.md).
 */

/** Where the tus endpoint is; an upload's URL is `${UPLOADS_PATH}/<uploadId>`. */
export const UPLOADS_PATH = '/api/uploads';

/** A tus upload id as the API names uploads (16 random bytes, hex). */
export const UploadId = z.string().regex(/^[0-9a-f]{32}$/, 'must be an upload id from POST /api/uploads');
export type UploadId = z.infer<typeof UploadId>;

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');

/** POST /api/uploads/reuse: the bytes a client is about to send, by digest and size. */
export const ReuseRequest = z.object({ sha256: Sha256, size: z.number().int().nonnegative() });

/** 201 from POST /api/uploads/reuse: the caller already sent these bytes; a new finished upload names them. */
export const ReusedUpload = z.object({ uploadId: UploadId, sha256: Sha256, size: z.number().int().nonnegative(), reused: z.literal(true) });

/** POST /api/jobs as JSON: the asset's files as finished uploads, each under the artist's file name. */
export const JobStartBody = z.object({
  files: z.array(z.object({ uploadId: UploadId, name: z.string().max(4096) })).max(1024),
  options: z.record(z.string(), z.unknown()).optional(),
  preset: z.string().max(64).optional(),
});
export type JobStartBody = z.infer<typeof JobStartBody>;

/** The upload id at the end of a tus upload URL (absolute or relative), or null. */
export function uploadIdOf(url: string): UploadId | null {
  const parsed = UploadId.safeParse(url.split('?')[0]!.split('/').pop());
  return parsed.success ? parsed.data : null;
}

/** What startFromLatestAttempt needs of a tus-js-client Upload (its browser and Node builds alike). */
interface ResumableUpload<Previous extends { creationTime: string }> {
  findPreviousUploads(): Promise<Previous[]>;
  resumeFromPreviousUpload(previous: Previous): void;
  start(): void;
}

/** Starts a tus upload, from the newest earlier attempt at the same file this client recorded, if any (page and CLI). */
export async function startFromLatestAttempt<Previous extends { creationTime: string }>(upload: ResumableUpload<Previous>): Promise<void> {
  const previous = await upload.findPreviousUploads();
  const last = [...previous].sort((a, b) => b.creationTime.localeCompare(a.creationTime))[0];
  if (last) upload.resumeFromPreviousUpload(last);
  upload.start();
}
