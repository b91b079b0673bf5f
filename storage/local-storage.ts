import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadTooLargeError, type AssetFile, type AssetStorage, type StoredBlob } from './asset-storage.js';

/** Artists' files are this user's only: folders 0700, files 0600 (the umask can only narrow them). */
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Local-filesystem storage under one data folder:
 *   uploads/sha256/<aa>/<hash>   content-addressed upload blobs
 *   work/<jobId>/input/<name>    hard links to the blobs under the artist's file names
 *   outputs/<jobId>/...          what the job produced
 */
export class LocalStorage implements AssetStorage {
  /**
   * Blobs that uploads in flight in this process created (they were not on disk before), by digest: how
   * many requests hold them, whether any kept them, and the inode last renamed into place.
   */
  private readonly pending = new Map<string, { holders: number; kept: boolean; ino: number }>();

  constructor(private readonly root: string) {}

  private get tmpDir(): string {
    return path.join(this.root, 'uploads', 'tmp');
  }

  private blobPath(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`Not a sha256 digest: ${sha256}`);
    return path.join(this.root, 'uploads', 'sha256', sha256.slice(0, 2), sha256);
  }

  private jobDir(area: 'work' | 'outputs', jobId: string): string {
    if (!/^[A-Za-z0-9._@-]+$/.test(jobId) || jobId === '.' || jobId === '..') throw new Error(`Not a job id: ${jobId}`);
    return path.join(this.root, area, jobId);
  }

  async putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob> {
    await fs.mkdir(this.tmpDir, { recursive: true, mode: PRIVATE_DIR });
    const tmp = path.join(this.tmpDir, randomUUID());
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
      await pipeline(stream, meter, createWriteStream(tmp, { flags: 'wx', mode: PRIVATE_FILE }));
      const sha256 = hash.digest('hex');
      const dest = this.blobPath(sha256);
      await fs.mkdir(path.dirname(dest), { recursive: true, mode: PRIVATE_DIR });
      const existed = await fs.stat(dest).then(
        () => true,
        () => false,
      );
      // rename is atomic: a concurrent identical upload just replaces the blob with the same bytes.
      await fs.rename(tmp, dest);
      const ino = (await fs.stat(dest)).ino;
      const entry = this.pending.get(sha256);
      if (entry) {
        entry.holders++;
        entry.ino = ino;
      } else if (!existed) this.pending.set(sha256, { holders: 1, kept: false, ino });
      return { sha256, size };
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async settleUpload(blob: StoredBlob, outcome: 'kept' | 'discarded'): Promise<void> {
    const entry = this.pending.get(blob.sha256);
    if (!entry) return;
    entry.holders--;
    if (outcome === 'kept') entry.kept = true;
    if (entry.holders > 0) return;
    this.pending.delete(blob.sha256);
    if (entry.kept) return;
    const dest = this.blobPath(blob.sha256);
    // Another process renamed its copy of the same bytes over ours (other inode), or a job has laid
    // the blob out (more links): it is in use.
    const current = await fs.stat(dest).catch(() => null);
    if (current?.ino === entry.ino && current.nlink === 1) await fs.rm(dest, { force: true });
  }

  async removeStaleUploads(maxAgeMs: number): Promise<number> {
    const names = await fs.readdir(this.tmpDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const stat = await fs.stat(file).catch(() => null);
      // An upload in progress writes its file continuously, so its mtime stays recent.
      if (!stat || stat.mtimeMs > cutoff) continue;
      await fs.rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  async materializeInputs(jobId: string, files: readonly AssetFile[]): Promise<string> {
    const dir = path.join(this.jobDir('work', jobId), 'input');
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
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
    await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    return dir;
  }

  async outputDir(jobId: string): Promise<string> {
    const dir = this.jobDir('outputs', jobId);
    await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    return dir;
  }

  outputLocation(jobId: string): string {
    return this.jobDir('outputs', jobId);
  }

  async uploadPath(blob: StoredBlob): Promise<string | null> {
    const file = this.blobPath(blob.sha256);
    const stat = await fs.stat(file).catch(() => null);
    return stat?.isFile() ? file : null;
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
}
