import { once } from 'node:events';
import path from 'node:path';
import type { Response } from 'express';
import { ZipArchive } from 'archiver';
import type { JobOutput } from '../common/jobs.js';
import type { AssetStorage, StoredObject } from '../storage/asset-storage.js';

/**
 * One file a job produced, by its path relative to the job's outputs (always with `/`): the shape of
 * common/pipeline.ts OutputFile, plus `size` (same as bytes) and when it was published.
 */
export type { JobOutput } from '../common/jobs.js';

/** What a file is, from the names the package stage gives them (`<asset>-lod<N>.glb`, `report.json`). */
function describeOutput(name: string): Pick<JobOutput, 'kind' | 'level'> {
  const lod = /-lod(\d+)\.glb$/i.exec(name);
  if (lod) return { kind: 'glb', level: Number(lod[1]) };
  if (/\.glb$/i.test(name)) return { kind: 'glb' };
  if (name === 'report.json') return { kind: 'report' };
  return { kind: 'other' };
}

/** A job's published outputs as the API lists them (read from storage, never from a folder). */
export async function listOutputs(storage: AssetStorage, jobId: string): Promise<JobOutput[]> {
  return (await storage.listOutputs(jobId)).map((o) => ({
    name: o.name,
    bytes: o.size,
    size: o.size,
    sha256: o.sha256,
    ...describeOutput(o.name),
    modifiedAt: o.modifiedAt,
  }));
}

/** Streams stored bytes as a download. */
export async function sendStored(res: Response, object: StoredObject, name: string): Promise<void> {
  res.status(200);
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('content-length', String(object.size));
  res.attachment(path.posix.basename(name));
  await pipeStream(object.stream, res);
}

/**
 * Streams every output of a job as one zip, built while it is sent: each output is opened from storage
 * only when the archive reaches it, so one read is open at a time and nothing is held in memory or on disk.
 */
export async function sendOutputsZip(
  res: Response,
  storage: AssetStorage,
  jobId: string,
  outputs: readonly JobOutput[],
  zipName: string,
): Promise<void> {
  const zip = new ZipArchive({ zlib: { level: 6 } });
  res.status(200);
  res.setHeader('content-type', 'application/zip');
  res.attachment(zipName);
  const sent = pipeStream(zip, res);
  for (const output of outputs) {
    if (res.destroyed) break;
    const object = await storage.openOutput(jobId, output.name);
    // Expired between the listing and here: the zip ends short rather than with a made-up entry.
    if (!object) break;
    const added = once(zip, 'entry');
    zip.append(object.stream, { name: output.name });
    await added;
  }
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
