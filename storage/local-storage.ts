import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadTooLargeError, type AssetFile, type AssetStorage, type StoredBlob } from './asset-storage.js';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Local-filesystem storage under one data folder:
 *   uploads/sha256/<aa>/<hash>   content-addressed upload blobs
 *   work/<jobId>/input/<name>    hard links to the blobs under the artist's file names
 *   outputs/<jobId>/...          what the job produced
 */
export class LocalStorage implements AssetStorage {
  constructor(private readonly root: string) {}

  private blobPath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`Not a sha256 digest: ${sha256}`);
    return path.join(this.root, 'uploads', 'sha256', sha256.slice(0, 2), sha256);
  }

  private jobDir(area: 'work' | 'outputs', jobId: string): string {
    if (!/^[A-Za-z0-9._@-]+$/.test(jobId) || jobId === '.' || jobId === '..') throw new Error(`Not a job id: ${jobId}`);
    return path.join(this.root, area, jobId);
  }

  async putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob> {
    const tmpDir = path.join(this.root, 'uploads', 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const tmp = path.join(tmpDir, randomUUID());
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new UploadTooLargeError(maxBytes));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(stream, meter, createWriteStream(tmp, { flags: 'wx' }));
      const sha256 = hash.digest('hex');
      const dest = this.blobPath(sha256);
      await fs.mkdir(path.dirname(dest), { recursive: true });
      // rename is atomic: a concurrent identical upload just replaces the blob with the same bytes.
      await fs.rename(tmp, dest);
      return { sha256, size };
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async materializeInputs(jobId: string, files: readonly AssetFile[]): Promise<string> {
    const dir = path.join(this.jobDir('work', jobId), 'input');
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    for (const file of files) {
      const name = path.basename(file.name);
      if (name !== file.name || name === '.' || name === '..') throw new Error(`Unsafe file name: ${file.name}`);
      await fs.link(this.blobPath(file.sha256), path.join(dir, name)).catch(async (err: NodeJS.ErrnoException) => {
        // Hard links fail across devices; fall back to a copy.
        if (err.code !== 'EXDEV') throw err;
        await fs.copyFile(this.blobPath(file.sha256), path.join(dir, name));
      });
    }
    return dir;
  }

  async workDir(jobId: string): Promise<string> {
    const dir = this.jobDir('work', jobId);
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  async outputDir(jobId: string): Promise<string> {
    const dir = this.jobDir('outputs', jobId);
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  async outputPath(jobId: string, name: string): Promise<string | null> {
    const dir = this.jobDir('outputs', jobId);
    const full = path.resolve(dir, name);
    if (!full.startsWith(dir + path.sep)) return null;
    try {
      const stat = await fs.stat(full);
      return stat.isFile() ? full : null;
    } catch {
      return null;
    }
  }

  async removeWork(jobId: string): Promise<void> {
    await fs.rm(this.jobDir('work', jobId), { recursive: true, force: true });
  }

  async removeOutputs(jobId: string): Promise<void> {
    await fs.rm(this.jobDir('outputs', jobId), { recursive: true, force: true });
  }

  async removeJob(jobId: string): Promise<void> {
    await this.removeWork(jobId);
    await this.removeOutputs(jobId);
  }
}
