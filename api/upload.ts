import type { Request } from 'express';
import busboy from 'busboy';
import type { AssetFile, AssetStorage, StoredBlob } from '../storage/asset-storage.js';
import { UploadTooLargeError } from '../storage/asset-storage.js';
import { FAILURES, type FailureCode } from '../common/failures.js';

/** An upload the client got wrong: answered with 400 (or 413 for size) and the message as is. */
export class UploadError extends Error {
  constructor(
    readonly status: 400 | 403 | 413,
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

export interface ParsedUpload {
  files: AssetFile[];
  fields: Record<string, string>;
  /**
   * Ends the request's hold on what it stored: `kept` once a job uses the files, `discarded` when the
   * request is refused after the upload (bad options, no model), so nothing is left behind.
   */
  settle(outcome: 'kept' | 'discarded'): Promise<void>;
}

const MAX_FILES = 256;
const MAX_FIELD_BYTES = 16 * 1024;

/**
 * Streams a multipart upload into storage file by file, never holding a file in memory. Resolves only
 * when every file is stored; an aborted or oversized request rejects, and no job is started from it.
 */
export function receiveUpload(req: Request, storage: AssetStorage, maxBytes: number): Promise<ParsedUpload> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: MAX_FILES, fields: 32, fieldSize: MAX_FIELD_BYTES, fileSize: maxBytes } });
    } catch {
      reject(
        new UploadError(400, FAILURES.UPLOAD_NOT_MULTIPART.code, 'Send the asset as multipart/form-data with one or more "files" parts.'),
      );
      return;
    }
    const files: AssetFile[] = [];
    const fields: Record<string, string> = {};
    const stores: Promise<void>[] = [];
    /** Every blob stored for this request, kept or not, so a failed request can remove what it added. */
    const stored: StoredBlob[] = [];
    let total = 0;
    let failed: Error | null = null;
    const settle = async (outcome: 'kept' | 'discarded') => {
      await Promise.allSettled(stored.splice(0).map((blob) => storage.settleUpload(blob, outcome)));
    };
    const fail = (err: Error) => {
      if (failed) return;
      failed = err;
      req.unpipe(bb);
      req.resume();
      reject(err);
      // Files that made it into storage before the failure belong to no job: remove them once every
      // file of the request has settled (a file still streaming settles with an error now).
      void Promise.allSettled(stores).then(() => settle('discarded'));
    };

    bb.on('file', (field, stream, info) => {
      const name = info.filename;
      if (field !== 'files' || !name || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
        stream.resume();
        fail(
          new UploadError(
            400,
            FAILURES.UPLOAD_BAD_FILE.code,
            `Each file goes in a "files" part with a plain file name (got ${JSON.stringify(name ?? '')}).`,
          ),
        );
        return;
      }
      stream.on('limit', () => stream.destroy(new UploadTooLargeError(maxBytes)));
      stores.push(
        storage
          .putUpload(stream, Math.max(0, maxBytes - total))
          .then((blob) => {
            stored.push(blob);
            if (failed) return;
            total += blob.size;
            if (total > maxBytes) throw new UploadTooLargeError(maxBytes);
            files.push({ name, ...blob });
          })
          // Also catches the total going over the limit above: that is a 413 too, not a 500.
          .catch((err: unknown) => {
            fail(err instanceof UploadTooLargeError ? new UploadError(413, FAILURES.UPLOAD_TOO_LARGE.code, err.message) : (err as Error));
          }),
      );
    });
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated)
        fail(new UploadError(400, FAILURES.UPLOAD_FIELD_TOO_LARGE.code, `Field ${name} is over ${MAX_FIELD_BYTES} bytes.`));
      else fields[name] = value;
    });
    bb.on('filesLimit', () => fail(new UploadError(400, FAILURES.UPLOAD_TOO_MANY_FILES.code, `At most ${MAX_FILES} files per asset.`)));
    bb.on('error', (err: Error) =>
      fail(new UploadError(400, FAILURES.UPLOAD_MALFORMED.code, `The upload could not be read: ${err.message}`)),
    );
    bb.on('close', () => {
      Promise.all(stores).then(() => {
        if (failed) return;
        if (files.length === 0)
          fail(
            new UploadError(
              400,
              FAILURES.UPLOAD_EMPTY.code,
              'The upload has no files; attach the .glb, or the .gltf with its .bin and textures.',
            ),
          );
        else resolve({ files, fields, settle });
      }, fail);
    });
    req.on('aborted', () =>
      fail(new UploadError(400, FAILURES.UPLOAD_ABORTED.code, 'The upload was interrupted before it finished; send it again.')),
    );
    req.pipe(bb);
  });
}
