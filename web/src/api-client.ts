import type { z } from 'zod';
import { ErrorBody } from './server-frames.js';

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
/** Nothing resumes a dropped upload (the server keeps no partial upload): it must be sent again from the start. */
const UPLOAD_DROPPED_MESSAGE =
  'The upload was interrupted before it finished and nothing was kept. Check your network connection, then click Upload to send it again from the start.';

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

  /**
   * POSTs one asset as multipart with XMLHttpRequest, the one browser API that reports upload progress.
   * onProgress gets the bytes sent so far.
   */
  upload(form: FormData, onProgress: (sentBytes: number) => void, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/jobs');
      xhr.setRequestHeader('authorization', `Bearer ${this.token}`);
      xhr.responseType = 'json';
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onerror = () => reject(new ApiError('NETWORK', 0, UPLOAD_DROPPED_MESSAGE));
      xhr.onabort = () => reject(new ApiError('ABORTED', 0, 'The upload was stopped.'));
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
        const body = ErrorBody.safeParse(xhr.response);
        const error = body.success ? new ApiError(body.data.error.code, xhr.status, body.data.error.message) : errorForStatus(xhr.status);
        if (error.isAuth) this.onAuthFailure(error);
        reject(error);
      };
      signal?.addEventListener('abort', () => xhr.abort());
      xhr.send(form);
    });
  }
}
