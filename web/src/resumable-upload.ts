import { createSHA256 } from 'hash-wasm';
import { DetailedError, Upload } from 'tus-js-client';
import { startFromLatestAttempt, UPLOADS_PATH, uploadIdOf, type UploadId } from '../../common/uploads.js';
import { ApiError, errorForStatus } from './api-client.js';
import { ErrorBody } from './server-frames.js';

/** Waits between tries after the network drops; each try goes on from the offset the server holds. */
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10_000, 20_000];

/**
 * The file's sha256, read as a stream in the file's own chunks (hash-wasm): a 2 GiB model is never held
 * in memory. onProgress gets the bytes hashed so far.
 */
export async function sha256OfFile(file: File, onProgress?: (hashed: number) => void): Promise<string> {
  const hasher = await createSHA256();
  hasher.init();
  const reader = file.stream().getReader();
  let hashed = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hasher.update(value);
    hashed += value.length;
    onProgress?.(hashed);
  }
  return hasher.digest('hex');
}

/** What the tus server said when it refused: its "CODE: message" body, or the status in words. */
function tusError(err: Error): ApiError {
  const response = err instanceof DetailedError ? err.originalResponse : null;
  if (!response) return new ApiError('NETWORK', 0, err.message);
  const status = response.getStatus();
  const said = /^([A-Z_]+): (.+)$/s.exec(response.getBody().trim());
  if (said) return new ApiError(said[1]!, status, said[2]!);
  const body = ErrorBody.safeParse(
    (() => {
      try {
        return JSON.parse(response.getBody()) as unknown;
      } catch {
        return null;
      }
    })(),
  );
  return body.success ? new ApiError(body.data.error.code, status, body.data.error.message) : errorForStatus(status);
}

/** True for a refusal that trying again will not change (4xx other than a lock conflict). */
function isFinal(err: Error): boolean {
  const status = err instanceof DetailedError ? (err.originalResponse?.getStatus() ?? 0) : 0;
  return status >= 400 && status < 500 && status !== 409 && status !== 423;
}

/**
 * Sends one file with the tus protocol and resolves with its finished upload id. A dropped network is
 * retried from the server's offset; after a page reload the same file picked again goes on from there
 * (tus-js-client keeps the upload's address in localStorage under the file's name, size and date).
 */
export function sendResumably(
  file: File,
  options: { token: string; sha256: string; onProgress: (sent: number) => void; onRetry: () => void },
): Promise<UploadId> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(file, {
      endpoint: UPLOADS_PATH,
      headers: { authorization: `Bearer ${options.token}` },
      metadata: { filename: file.name, sha256: options.sha256 },
      retryDelays: RETRY_DELAYS_MS,
      removeFingerprintOnSuccess: true,
      // tus-js-client does not retry while the browser says it is offline; the page waits for it instead.
      onShouldRetry: (err) => !isFinal(err),
      onProgress: (sent) => options.onProgress(sent),
      onError: (err) => reject(tusError(err)),
      onSuccess: () => {
        const id = upload.url ? uploadIdOf(upload.url) : null;
        if (id) resolve(id);
        else reject(new ApiError('BAD_RESPONSE', 0, 'The server answered in a way this page does not understand; reload the page.'));
      },
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'HEAD') options.onRetry();
      },
    });
    startFromLatestAttempt(upload).catch((err: unknown) => reject(err instanceof Error ? tusError(err) : new ApiError('NETWORK', 0, String(err))));
  });
}
