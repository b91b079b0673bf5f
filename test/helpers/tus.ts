import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

/** Raw tus 1.0.0 requests to the API (POST /api/uploads), for tests that decide each byte themselves. */
export class TusProbe {
  constructor(
    private readonly apiUrl: string,
    private readonly token: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, 'tus-resumable': '1.0.0', ...extra };
  }

  /** Creates an upload of length bytes; the Response (201 with Location, or the refusal). */
  create(length: number, metadata: Record<string, string> = {}): Promise<Response> {
    const encoded = Object.entries(metadata)
      .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
      .join(',');
    return fetch(`${this.apiUrl}/api/uploads`, {
      method: 'POST',
      headers: this.headers({ 'upload-length': String(length), ...(encoded ? { 'upload-metadata': encoded } : {}) }),
    });
  }

  /** The absolute URL of a created upload. */
  url(created: Response): string {
    return new URL(created.headers.get('location')!, this.apiUrl).toString();
  }

  head(url: string): Promise<Response> {
    return fetch(url, { method: 'HEAD', headers: this.headers() });
  }

  patch(url: string, offset: number, body: Uint8Array): Promise<Response> {
    return fetch(url, {
      method: 'PATCH',
      headers: this.headers({ 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }),
      body: new Blob([new Uint8Array(body)]),
    });
  }

  delete(url: string): Promise<Response> {
    return fetch(url, { method: 'DELETE', headers: this.headers() });
  }
}

/** Files (data and .json info) of partial resumable uploads under an API's DATA_DIR. */
export function resumableFiles(dataDir: string): string[] {
  const dir = path.join(dataDir, 'uploads', 'resumable');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Content-addressed blobs under DATA_DIR/uploads/sha256. */
export function storedBlobs(dataDir: string): string[] {
  const root = path.join(dataDir, 'uploads', 'sha256');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((prefix) => readdirSync(path.join(root, prefix)));
}
