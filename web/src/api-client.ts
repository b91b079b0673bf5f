import type { z } from 'zod';
import { ReusedUpload, type UploadId } from '../../common/uploads.js';
import { ErrorBody } from './server-frames.js';
import { sendResumably } from './resumable-upload.js';

/** A failed request, with a stable code and a message that says what happened and what to do. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** 401: the token is missing, invalid or expired; the artist must sign in again. */
  get isAuth(): boolean {
    return this.status === 401;
  }
}

const NETWORK_MESSAGE = "Can't reach the asset-farm server. Check your network connection and try again.";
/** The server keeps what arrived (tus): the next try goes on from there. */
const UPLOAD_DROPPED_MESSAGE =
  'The connection dropped before the upload finished. What arrived is kept: check your network, then click Upload to go on from where it stopped.';

/** Turns a non-2xx answer into an ApiError, using the server's own message when it sent one. */
export async function errorFrom(response: Response): Promise<ApiError> {
  const body = ErrorBody.safeParse(await response.json().catch(() => null));
  if (body.success) return new ApiError(body.data.error.code, response.status, body.data.error.message);
  return errorForStatus(response.status);
}

export function errorForStatus(status: number): ApiError {
  if (status === 404) return new ApiError('NOT_FOUND', status, 'The server has no such page or job.');
  if (status === 413)
    return new ApiError('UPLOAD_TOO_LARGE', status, 'The upload is larger than the server allows; reduce the asset or ask an engineer.');
  if (status >= 500)
    return new ApiError(
      'SERVER',
      status,
      `The server had a problem (HTTP ${status}). Try again in a minute; if it keeps happening, tell an engineer.`,
    );
  return new ApiError('HTTP', status, `The request was refused (HTTP ${status}).`);
}

/** The REST API for one signed-in artist. Every answer is parsed with a schema before use. */
export class ApiClient {
  constructor(
    private readonly token: string,
    private readonly onAuthFailure: (error: ApiError) => void,
  ) {}

  async json<T>(path: string, schema: z.ZodType<T>, init: RequestInit = {}): Promise<T> {
    const response = await this.fetch(path, init);
    const parsed = schema.safeParse(await response.json().catch(() => null));
    if (!parsed.success)
      throw new ApiError('BAD_RESPONSE', response.status, 'The server answered in a way this page does not understand; reload the page.');
    return parsed.data;
  }

  /** A binary answer (downloads), fetched with the token since a plain link cannot carry it. */
  async blob(path: string): Promise<Blob> {
    return (await this.fetch(path)).blob();
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${this.token}` } });
    } catch {
      throw new ApiError('NETWORK', 0, NETWORK_MESSAGE);
    }
    if (response.ok) return response;
    const error = await errorFrom(response);
    if (error.isAuth) this.onAuthFailure(error);
    throw error;
  }

  /** A finished upload id for bytes this artist already sent (nothing to send again), or null. */
  async reuse(sha256: string, size: number): Promise<UploadId | null> {
    try {
      const body = await this.json('/api/uploads/reuse', ReusedUpload, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sha256, size }),
      });
      return body.uploadId;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'UPLOAD_NOT_HELD') return null;
      throw err;
    }
  }

  /**
   * Sends one file resumably (tus) and resolves with its finished upload id. onProgress gets the bytes the
   * server holds so far, from where a resumed upload goes on; onRetry is called when it asks the server
   * where to go on from (after a drop, or for an upload begun before a reload).
   */
  async sendFile(file: File, sha256: string, onProgress: (sent: number) => void, onRetry: () => void): Promise<UploadId> {
    try {
      return await sendResumably(file, { token: this.token, sha256, onProgress, onRetry });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.isAuth) this.onAuthFailure(err);
      throw err.code === 'NETWORK' ? new ApiError('NETWORK', 0, UPLOAD_DROPPED_MESSAGE) : err;
    }
  }
}
