import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tus from 'tus-js-client';
import { DetailedError, Upload, type UrlStorage } from 'tus-js-client';
import { startFromLatestAttempt, UPLOADS_PATH, uploadIdOf, type UploadId } from '../common/uploads.js';
import { CliError } from './cli-error.js';

// tus-js-client's Node build exports its file-backed URL storage, but its typings (shared with the browser) omit it.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (file: string) => UrlStorage };

/**
 * The file-backed storage, with the removals it was asked for kept track of: tus-js-client removes a
 * finished upload's entry without waiting for it and reports success at once, so a CLI that exits right
 * after could leave the entry behind (and a later submit would try to resume an upload that is done).
 */
class SettlingUrlStorage implements UrlStorage {
  private readonly removals = new Set<Promise<void>>();
  constructor(private readonly inner: UrlStorage) {}
  findAllUploads: UrlStorage['findAllUploads'] = () => this.inner.findAllUploads();
  findUploadsByFingerprint: UrlStorage['findUploadsByFingerprint'] = (fingerprint) => this.inner.findUploadsByFingerprint(fingerprint);
  addUpload: UrlStorage['addUpload'] = (fingerprint, upload) => this.inner.addUpload(fingerprint, upload);
  removeUpload(key: string): Promise<void> {
    const removal = this.inner.removeUpload(key);
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal)).catch(() => undefined);
    return removal;
  }
  /** Resolves once every removal asked for so far has been written (or failed: tus-js-client reports that). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.removals]);
  }
}

/** Waits between tries after a dropped connection; each try goes on from the offset the server holds. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000];

/** The sha256 of a file, read as a stream (never whole in memory). */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

export interface ResumableUploadOptions {
  api: string;
  token: string | null;
  /** Where the URLs of unfinished uploads are kept, so a later run of the CLI goes on with them; null: nowhere. */
  resumeFile: string | null;
  /** Asks the API whether the owner already sent these bytes; the upload id when so. */
  reuse: (sha256: string, size: number) => Promise<UploadId | null>;
  onProgress?: (sent: number, total: number) => void;
}

/**
 * Uploads one file with the tus protocol and returns its finished upload id. Bytes the signed-in user
 * already sent are not sent again; a dropped connection is retried from the server's offset, and an
 * upload cut short by a killed CLI goes on from there at the next `submit` of the same file.
 */
export async function uploadResumably(file: string, options: ResumableUploadOptions): Promise<UploadId> {
  const { size } = await stat(file);
  const sha256 = await fileSha256(file);
  const reused = await options.reuse(sha256, size);
  if (reused) return reused;
  const { resumeFile } = options;
  if (resumeFile) await mkdir(path.dirname(resumeFile), { recursive: true, mode: 0o700 });
  const storage = resumeFile ? new SettlingUrlStorage(new FileUrlStorage(resumeFile)) : null;
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new Upload(createReadStream(file), {
      endpoint: new URL(UPLOADS_PATH, options.api).toString(),
      headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
      metadata: { filename: path.basename(file), sha256 },
      retryDelays: RETRY_DELAYS_MS,
      // tus-js-client's Node fingerprint: the file's absolute path, size, mtime and the endpoint.
      ...(storage ? { urlStorage: storage } : { storeFingerprintForResuming: false }),
      removeFingerprintOnSuccess: true,
      onProgress: options.onProgress ?? null,
      // Once the finished upload's entry is gone from the resume file, not before.
      onSuccess: () => void (storage?.settled() ?? Promise.resolve()).then(() => resolve(upload.url!)),
      onError: (err) => reject(uploadError(options.api, file, err)),
    });
    startFromLatestAttempt(upload).catch((err: unknown) => reject(err as Error));
  });
  const id = uploadIdOf(url);
  if (!id) throw new CliError('BAD_RESPONSE', `The API at ${options.api} gave the upload an address the CLI does not understand (${url}).`);
  return id;
}

function uploadError(api: string, file: string, err: Error): CliError {
  const response = err instanceof DetailedError ? err.originalResponse : null;
  const status = response?.getStatus() ?? 0;
  // tus error bodies are "CODE: message" (api/resumable-uploads.ts) or @tus/server's own plain text.
  const said = response?.getBody().trim() ?? '';
  if (status === 401)
    return new CliError('AUTH_REFUSED', 'The API refused the sign-in. Run `asset-farm login` (or set ASSET_FARM_TOKEN) and try again.');
  if (status === 413)
    return new CliError(
      'BAD_ARGUMENT',
      `${file} is larger than the API at ${api} accepts (UPLOAD_MAX_BYTES); reduce the asset or ask an engineer.`,
    );
  if (status >= 400 && status < 500) return new CliError('BAD_ARGUMENT', `The API refused ${file}: ${said || `HTTP ${status}`}.`);
  return new CliError(
    'API_UNREACHABLE',
    `The upload of ${file} to ${api} stopped (${status ? `HTTP ${status}` : err.message.split('\n')[0]}); run the same submit again to go on from where it stopped.`,
  );
}
