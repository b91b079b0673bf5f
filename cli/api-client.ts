import path from 'node:path';
import type { z } from 'zod';
import { JobHistory } from '../common/job-history.js';
import type { JobOptions } from '../common/jobs.js';
import {
  ApiErrorBody,
  BatchAnswer,
  CancelAnswer,
  DevLoginAnswer,
  JobDetail,
  JobPage,
  OutputListing,
  RetryAnswer,
  SubmitAnswer,
  type OutputFile,
} from './api-schemas.js';
import { CliError } from './cli-error.js';
import { ReusedUpload, type JobStartBody, type UploadId } from '../common/uploads.js';
import { uploadResumably } from './resumable-upload.js';

/** How long a plain request may take before the API counts as unreachable. Uploads and downloads have no limit. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Network error codes that mean "the API is not there" rather than "the API said no". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
]);

function causeCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code) return code;
    current = current.cause;
  }
  return undefined;
}

/** Maps a failure to reach the API (fetch or WebSocket) to the "unreachable" error, or returns null. */
export function unreachableError(api: string, err: unknown): CliError | null {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new CliError('API_UNREACHABLE', `The asset-farm API at ${api} did not answer in time; check that it is running and try again.`);
  }
  const code = causeCode(err);
  if ((err instanceof TypeError && err.message === 'fetch failed') || (code && UNREACHABLE_CODES.has(code))) {
    return new CliError(
      'API_UNREACHABLE',
      `Cannot reach the asset-farm API at ${api}${code ? ` (${code})` : ''}. Check that it is running and the URL ` +
        '(`asset-farm login --api <url>` or ASSET_FARM_API).',
    );
  }
  return null;
}

/** The REST API for one signed-in user (docs/PROTOCOL.md, README). Every answer is parsed before use. */
export class ApiClient {
  constructor(
    readonly api: string,
    private readonly token: string | null,
    /** Where unfinished uploads are remembered for the next run (cli-config.ts resumeFilePath); null: nowhere. */
    private readonly resumeFile: string | null = null,
  ) {}

  /** The dev login of a local stack: a token for any user name. */
  static async devLogin(api: string, user: string): Promise<z.infer<typeof DevLoginAnswer>> {
    const client = new ApiClient(api, null);
    try {
      return await client.json('POST', '/api/auth/dev-login', DevLoginAnswer, {
        body: JSON.stringify({ user }),
        contentType: 'application/json',
      });
    } catch (err) {
      if (err instanceof CliError && err.code === 'NOT_SUPPORTED') {
        throw new CliError(
          'AUTH_REFUSED',
          `${api} has no dev login (it is only enabled on local stacks). Get a token from your studio's sign-in and run \`asset-farm login --token <jwt>\`.`,
        );
      }
      throw err;
    }
  }

  /** WebSocket URL of the progress socket. */
  get socketUrl(): string {
    const url = new URL('/ws', this.api);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }

  get bearer(): string | null {
    return this.token;
  }

  /**
   * Uploads the files of one asset (a .glb, or a .gltf with its .bin and images), each resumably and only
   * when the API does not already hold its bytes for this user, then starts a job naming them.
   */
  async submit(
    files: string[],
    options: Partial<JobOptions>,
    onProgress?: (file: string, sent: number, total: number) => void,
  ): Promise<z.infer<typeof SubmitAnswer>> {
    const uploaded = await this.uploadFiles(files, onProgress);
    const body: JobStartBody = { files: uploaded, options };
    return this.json('POST', '/api/jobs', SubmitAnswer, { body: JSON.stringify(body), contentType: 'application/json' });
  }

  /**
   * Uploads every asset of a folder as submit does, then starts them as one batch (POST /api/batches)
   * named after the folder; `assets` is each asset's files.
   */
  async submitBatch(
    name: string,
    assets: string[][],
    options: Partial<JobOptions>,
    onProgress?: (file: string, sent: number, total: number) => void,
  ): Promise<z.infer<typeof BatchAnswer>> {
    const uploaded: { files: JobStartBody['files'] }[] = [];
    for (const files of assets) uploaded.push({ files: await this.uploadFiles(files, onProgress) });
    return this.json('POST', '/api/batches', BatchAnswer, {
      body: JSON.stringify({ name, assets: uploaded, options }),
      contentType: 'application/json',
    });
  }

  /** Each file uploaded resumably (or named by the bytes the API already holds), under its base name. */
  private async uploadFiles(
    files: string[],
    onProgress?: (file: string, sent: number, total: number) => void,
  ): Promise<JobStartBody['files']> {
    const uploaded: JobStartBody['files'] = [];
    for (const file of files) {
      const uploadId = await uploadResumably(file, {
        api: this.api,
        token: this.token,
        resumeFile: this.resumeFile,
        reuse: (sha256, size) => this.reuse(sha256, size),
        ...(onProgress ? { onProgress: (sent: number, total: number) => onProgress(file, sent, total) } : {}),
      });
      uploaded.push({ uploadId, name: path.basename(file) });
    }
    return uploaded;
  }

  /** A finished upload id for bytes this user already sent, or null when the API holds none (404). */
  private async reuse(sha256: string, size: number): Promise<UploadId | null> {
    const res = await this.send('POST', '/api/uploads/reuse', {
      body: JSON.stringify({ sha256, size }),
      contentType: 'application/json',
      notFoundIsAnswer: true,
    });
    if (res.status === 404) return null;
    const parsed = ReusedUpload.safeParse(await res.json().catch(() => undefined));
    if (!parsed.success)
      throw new CliError(
        'BAD_RESPONSE',
        `The API at ${this.api} answered POST /api/uploads/reuse with an unexpected body; is the CLI the same version as the server?`,
      );
    return parsed.data.uploadId;
  }

  listJobs(query: { limit: number; before?: string }): Promise<z.infer<typeof JobPage>> {
    const params = new URLSearchParams({ limit: String(query.limit), ...(query.before ? { before: query.before } : {}) });
    return this.json('GET', `/api/jobs?${params}`, JobPage);
  }

  getJob(jobId: string): Promise<z.infer<typeof JobDetail>> {
    return this.json('GET', jobPath(jobId), JobDetail);
  }

  cancel(jobId: string): Promise<z.infer<typeof CancelAnswer>> {
    return this.json('POST', `${jobPath(jobId)}/cancel`, CancelAnswer);
  }

  retry(jobId: string): Promise<z.infer<typeof RetryAnswer>> {
    return this.json('POST', `${jobPath(jobId)}/retry`, RetryAnswer);
  }

  outputs(jobId: string): Promise<OutputFile[]> {
    return this.json('GET', `${jobPath(jobId)}/outputs`, OutputListing);
  }

  history(jobId: string): Promise<z.infer<typeof JobHistory>> {
    return this.json('GET', `${jobPath(jobId)}/history`, JobHistory);
  }

  /** A download's response with its body still to be read; errors are mapped like any request's. */
  download(jobId: string, name: string | null): Promise<Response> {
    const target = name === null ? `${jobPath(jobId)}/outputs.zip` : `${jobPath(jobId)}/outputs/${encodeURIComponent(name)}`;
    return this.send('GET', target, { timeoutMs: null });
  }

  private async json<S extends z.ZodType>(
    method: string,
    target: string,
    schema: S,
    init: { body?: BodyInit; contentType?: string; timeoutMs?: number | null } = {},
  ): Promise<z.infer<S>> {
    const res = await this.send(method, target, init);
    const body: unknown = await res.json().catch(() => undefined);
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new CliError(
        'BAD_RESPONSE',
        `The API at ${this.api} answered ${method} ${target.split('?')[0]} with an unexpected body; is the CLI the same version as the server?`,
      );
    }
    return parsed.data;
  }

  private async send(
    method: string,
    target: string,
    init: { body?: BodyInit; contentType?: string; timeoutMs?: number | null; notFoundIsAnswer?: boolean },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (init.contentType) headers['content-type'] = init.contentType;
    const timeoutMs = init.timeoutMs === undefined ? REQUEST_TIMEOUT_MS : init.timeoutMs;
    let res: Response;
    try {
      res = await fetch(new URL(target, this.api), {
        method,
        headers,
        ...(init.body ? { body: init.body } : {}),
        ...(timeoutMs ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
      });
    } catch (err) {
      throw unreachableError(this.api, err) ?? err;
    }
    if (res.ok || (init.notFoundIsAnswer && res.status === 404)) return res;
    throw await this.errorOf(res);
  }

  private async errorOf(res: Response): Promise<CliError> {
    const parsed = ApiErrorBody.safeParse(await res.json().catch(() => undefined));
    const code = parsed.success ? parsed.data.error.code : undefined;
    const message = parsed.success ? parsed.data.error.message : `HTTP ${res.status} ${res.statusText}`;
    if (res.status === 401) {
      return new CliError('AUTH_REFUSED', `${message} Run \`asset-farm login\` (or set ASSET_FARM_TOKEN) and try again.`);
    }
    if (res.status === 404 && code === 'JOB_NOT_FOUND') {
      return new CliError('JOB_NOT_FOUND', 'No such job among yours; `asset-farm list` shows your jobs.');
    }
    if (res.status === 404 && (code === 'NOT_FOUND' || code === undefined)) {
      return new CliError('NOT_SUPPORTED', `The API at ${this.api} has no such route (${message}).`);
    }
    if (res.status === 400 || res.status === 413 || res.status === 422) return new CliError('BAD_ARGUMENT', message);
    if (res.status === 502 || res.status === 503 || res.status === 504) {
      return new CliError('API_UNREACHABLE', `The API at ${this.api} is not available right now (${res.status}); try again shortly.`);
    }
    return new CliError('REQUEST_REFUSED', message);
  }
}

function jobPath(jobId: string): string {
  return `/api/jobs/${encodeURIComponent(jobId)}`;
}
