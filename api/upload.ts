import type { Readable } from 'node:stream';
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

const MAX_FIELD_BYTES = 16 * 1024;
/** Room for the multipart framing and form fields beside the files, when checking Content-Length. */
const MULTIPART_OVERHEAD_BYTES = 1024 * 1024;
/** Longest file name in UTF-8 bytes: what Linux and most file systems store (ENAMETOOLONG beyond). */
const MAX_NAME_BYTES = 255;
/** How much of the body's end is kept to find a part header busboy refused (see unreadableName). */
const SNIFF_BYTES = 64 * 1024;
/** What a model file is called: the one file of an asset the pipeline starts from. */
export const MODEL_FILE = /\.(glb|gltf)$/i;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

export interface UploadLimits {
  /** Largest upload, all files together, in bytes. */
  maxBytes: number;
  /** Most files in one upload. */
  maxFiles: number;
}

/** A name as an artist would recognise it in a message: quoted, control characters visible, long ones cut. */
function shown(name: string): string {
  const quoted = JSON.stringify(name);
  return quoted.length > 80 ? `${quoted.slice(0, 60)}…" (${Buffer.byteLength(name)} bytes)` : quoted;
}

/** Why a file name cannot be stored, or null when it can. */
function nameProblem(name: string): string | null {
  if (!name || name === '.' || name === '..' || name.includes('/') || name.includes('\\'))
    return `${shown(name)} is not a plain file name; name the file without folders.`;
  if (CONTROL_CHARACTER.test(name)) return `${shown(name)} contains a control character (such as NUL or a line break); rename the file.`;
  if (Buffer.byteLength(name) > MAX_NAME_BYTES)
    return `The file name ${shown(name)} is longer than ${MAX_NAME_BYTES} bytes; give the file a shorter name.`;
  return null;
}

/**
 * The name checks of one asset's files, in the order they come: each a plain file name of at most 255
 * bytes without control characters, no two alike (after Unicode normalisation), at most one model.
 */
export class AssetFileNames {
  private readonly names = new Set<string>();
  private readonly models: string[] = [];

  /** Why the next file cannot be part of the asset, or null after taking its name. */
  refusal(name: string): UploadError | null {
    const problem = nameProblem(name);
    if (problem) return new UploadError(400, FAILURES.UPLOAD_BAD_FILE.code, problem);
    if (this.names.has(name.normalize('NFC')))
      return new UploadError(
        400,
        FAILURES.UPLOAD_DUPLICATE_NAME.code,
        `Two files are named ${shown(name)}; each file of an asset needs its own name.`,
      );
    if (MODEL_FILE.test(name) && this.models.length > 0)
      return new UploadError(
        400,
        FAILURES.UPLOAD_TOO_MANY_MODELS.code,
        `One asset per upload: ${shown(this.models[0]!)} and ${shown(name)} are both models (.glb/.gltf); upload each as its own job.`,
      );
    this.names.add(name.normalize('NFC'));
    if (MODEL_FILE.test(name)) this.models.push(name);
    return null;
  }
}

/**
 * Streams a multipart upload into storage file by file, never holding a file in memory. Resolves only
 * when every file is stored; an aborted, oversized or malformed request rejects, every file it started
 * is closed and removed, and no job is started from it. What can be refused without reading the body
 * (a Content-Length over the limit) is refused before any byte is written.
 */
export function receiveUpload(req: Request, storage: AssetStorage, limits: UploadLimits): Promise<ParsedUpload> {
  const { maxBytes, maxFiles } = limits;
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_OVERHEAD_BYTES) {
      reject(new UploadError(413, FAILURES.UPLOAD_TOO_LARGE.code, new UploadTooLargeError(maxBytes).message));
      return;
    }
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        // Names arrive as UTF-8 from every browser and curl; busboy's default (latin1) garbles the rest.
        defParamCharset: 'utf8',
        limits: { files: maxFiles, fields: 32, fieldSize: MAX_FIELD_BYTES, fileSize: maxBytes },
      });
    } catch {
      reject(
        new UploadError(400, FAILURES.UPLOAD_NOT_MULTIPART.code, 'Send the asset as multipart/form-data with one or more "files" parts.'),
      );
      return;
    }
    const files: AssetFile[] = [];
    const fields: Record<string, string> = {};
    const stores: Promise<void>[] = [];
    /** File streams busboy has opened and storage has not finished: closed at once when the request fails. */
    const streaming = new Set<Readable>();
    const names = new AssetFileNames();
    /** Every blob stored for this request, kept or not, so a failed request can remove what it added. */
    const stored: StoredBlob[] = [];
    let total = 0;
    let order = 0;
    const positions = new Map<AssetFile, number>();
    let failed: Error | null = null;
    const settle = async (outcome: 'kept' | 'discarded') => {
      await Promise.allSettled(stored.splice(0).map((blob) => storage.settleUpload(blob, outcome)));
    };
    const fail = (err: Error) => {
      if (failed) return;
      failed = err;
      reject(err);
      req.unpipe(bb);
      // Busboy gets no more input, so a file it is streaming would never end: fail each one, so storage
      // closes its file and removes it (without this, each aborted upload kept an fd and its disk space
      // until the process exited). With an error: a stream destroyed without one after busboy ended it
      // but before storage read it looks finished to stream.pipeline, which then waits forever.
      for (const stream of streaming) stream.destroy(err);
      bb.destroy();
      req.resume();
      // Files that made it into storage before the failure belong to no job: remove them once every
      // file of the request has settled (a file still streaming settles with an error now).
      void Promise.allSettled(stores).then(() => settle('discarded'));
    };

    bb.on('file', (field, stream, info) => {
      // What goes wrong in a file stream reaches storage's pipeline (or does not matter for a refused
      // file); busboy also errors a stream it is destroyed in the middle of, after the request failed.
      stream.on('error', () => undefined);
      // Busboy may go on with parts already in its buffer after the request failed: nothing more is stored.
      if (failed) {
        stream.resume();
        return;
      }
      const name = info.filename ?? '';
      const position = order++;
      const refusal =
        field !== 'files'
          ? new UploadError(400, FAILURES.UPLOAD_BAD_FILE.code, `Each file goes in a "files" part (got a file in "${field}").`)
          : names.refusal(name);
      if (refusal) {
        stream.resume();
        fail(refusal);
        return;
      }
      streaming.add(stream);
      stream.on('limit', () => stream.destroy(new UploadTooLargeError(maxBytes)));
      stores.push(
        storage
          .putUpload(stream, Math.max(0, maxBytes - total))
          .finally(() => streaming.delete(stream))
          .then((blob) => {
            stored.push(blob);
            if (failed) return;
            total += blob.size;
            if (total > maxBytes) throw new UploadTooLargeError(maxBytes);
            files.push({ name, ...blob });
            positions.set(files.at(-1)!, position);
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
    bb.on('filesLimit', () =>
      fail(new UploadError(400, FAILURES.UPLOAD_TOO_MANY_FILES.code, `At most ${maxFiles} files per asset; this upload has more.`)),
    );
    bb.on('error', (err: Error) => {
      const name = err.message === 'Malformed part header' ? unreadableName() : undefined;
      fail(
        name !== undefined
          ? new UploadError(400, FAILURES.UPLOAD_BAD_FILE.code, nameProblem(name)!)
          : new UploadError(
              400,
              FAILURES.UPLOAD_MALFORMED.code,
              err.message === 'Malformed part header'
                ? 'A part of the upload has a header that cannot be read; a file name with a control character (such as NUL or a line break) does this: rename the file and upload again.'
                : `The upload could not be read: ${err.message}`,
            ),
      );
    });
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
        // In the order the artist sent them, not the order storage finished them.
        else resolve({ files: files.sort((a, b) => positions.get(a)! - positions.get(b)!), fields, settle });
      }, fail);
    });
    // The last bytes of the body, to name the file whose part header busboy could not read (a raw NUL or
    // line break in its name): busboy reports only "Malformed part header".
    const recent: Buffer[] = [];
    let recentBytes = 0;
    req.on('data', (chunk: Buffer) => {
      recent.push(chunk);
      recentBytes += chunk.length;
      while (recent.length > 1 && recentBytes - recent[0]!.length >= SNIFF_BYTES) recentBytes -= recent.shift()!.length;
    });
    const unreadableName = (): string | undefined =>
      [
        ...Buffer.concat(recent)
          .toString('utf8')
          .matchAll(/filename="([^"]*)"/g),
      ]
        .map((m) => m[1]!)
        .find((n) => CONTROL_CHARACTER.test(n));
    const aborted = () =>
      fail(new UploadError(400, FAILURES.UPLOAD_ABORTED.code, 'The upload was interrupted before it finished; send it again.'));
    req.on('aborted', aborted);
    // A client gone, or the idle timeout (api/app.ts) closing the connection, before the body ended.
    req.on('close', () => {
      if (!req.complete) aborted();
    });
    req.pipe(bb);
  });
}
