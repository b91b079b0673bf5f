import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';

/** The shared sample assets, used in place. */
export const SHARED_ASSETS = path.resolve(PROJECT_ROOT, '..', 'shared', 'assets');

/** Uploads files to POST /api/jobs as multipart, the way the web page does. */
export async function uploadAsset(apiUrl: string, token: string, files: string[], fields: Record<string, string> = {}): Promise<Response> {
  const form = new FormData();
  for (const file of files) form.append('files', new Blob([await readFile(file)]), path.basename(file));
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return fetch(`${apiUrl}/api/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
}
