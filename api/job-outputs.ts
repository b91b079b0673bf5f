import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Response } from 'express';
import { ZipArchive } from 'archiver';
import type { JobOutput } from '../common/jobs.js';
import { PREVIEW_FILES } from '../common/pipeline.js';

/**
 * One file a job produced, by its path relative to the job's output folder (always with `/`): the
 * shape of common/pipeline.ts OutputFile, plus `size` (same as bytes) and when it was written.
 */
export type { JobOutput } from '../common/jobs.js';

/** sha256 of a file, streamed: outputs can be large. */
async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What a file is, from the names the stages give them (`<asset>-lod<N>.glb`, `report.json`, the preview's WebPs). */
function describeOutput(name: string): Pick<JobOutput, 'kind' | 'level'> {
  const lod = /-lod(\d+)\.glb$/i.exec(name);
  if (lod) return { kind: 'glb', level: Number(lod[1]) };
  if (/\.glb$/i.test(name)) return { kind: 'glb' };
  if (name === 'report.json') return { kind: 'report' };
  if ((Object.values(PREVIEW_FILES) as string[]).includes(name)) return { kind: 'preview' };
  return { kind: 'other' };
}

/**
 * Every regular file under a job's output folder. Symlinks are skipped, never followed: a download
 * can only ever read files that really sit inside the folder.
 */
export async function listOutputs(dir: string, { digests = true }: { digests?: boolean } = {}): Promise<JobOutput[]> {
  const outputs: JobOutput[] = [];
  async function walk(sub: string): Promise<void> {
    const entries = await fs.readdir(path.join(dir, sub), { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const entry of entries) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(rel);
      else if (entry.isFile()) {
        const full = path.join(dir, rel);
        const stat = await fs.stat(full);
        outputs.push({
          name: rel,
          bytes: stat.size,
          size: stat.size,
          sha256: digests ? await sha256Of(full) : '',
          ...describeOutput(rel),
          modifiedAt: stat.mtime.toISOString(),
        });
      }
    }
  }
  await walk('');
  return outputs.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The absolute path of output `name` (a relative path with `/` separators) inside `dir`, or null when
 * there is no such regular file or the name would leave the folder (`..`, absolute paths, symlinks).
 */
export async function resolveOutput(dir: string, name: string): Promise<string | null> {
  if (!name || name.includes('\0') || name.includes('\\') || path.isAbsolute(name)) return null;
  const parts = name.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return null;
  const full = path.join(dir, ...parts);
  try {
    // Every component must be a real directory or file: a symlink anywhere could point outside.
    const realDir = await fs.realpath(dir);
    const real = await fs.realpath(full);
    if (real !== path.join(realDir, ...parts)) return null;
    const stat = await fs.lstat(full);
    return stat.isFile() ? full : null;
  } catch {
    return null;
  }
}

/** Streams one file as a download. */
export async function sendOutput(res: Response, file: string, name: string): Promise<void> {
  const stat = await fs.stat(file);
  res.status(200);
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('content-length', String(stat.size));
  res.attachment(path.posix.basename(name));
  await pipeStream(createReadStream(file), res);
}

/** Streams every output of a job as one zip, built while it is sent (nothing is held in memory or on disk). */
export async function sendOutputsZip(res: Response, dir: string, outputs: readonly JobOutput[], zipName: string): Promise<void> {
  const zip = new ZipArchive({ zlib: { level: 6 } });
  res.status(200);
  res.setHeader('content-type', 'application/zip');
  res.attachment(zipName);
  const sent = pipeStream(zip, res);
  for (const output of outputs) zip.file(path.join(dir, ...output.name.split('/')), { name: output.name });
  await zip.finalize();
  await sent;
}

function pipeStream(source: NodeJS.ReadableStream & { destroy(err?: Error): void }, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    source.on('error', (err: Error) => {
      res.destroy(err);
      reject(err);
    });
    res.on('close', () => {
      // A client that went away stops the read instead of leaving it running.
      source.destroy();
      resolve();
    });
    source.pipe(res);
  });
}
