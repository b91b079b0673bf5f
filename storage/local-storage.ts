import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type AssetStorage, type StoredBlob } from './asset-storage.js';
import { FsObjectStore, PRIVATE_DIR, PRIVATE_FILE } from './fs-object-store.js';
import { blobKey, JobData } from './job-data.js';
import { uploadMeter } from './upload-meter.js';

/**
 * Local-filesystem storage under one data folder (the embedded default): the keys of storage/job-data.ts
 * as paths, plus uploads/tmp/ for uploads being received. Every process that uses it must see the folder.
 */
export class LocalStorage extends JobData implements AssetStorage {
  private readonly files: FsObjectStore;

  constructor(private readonly root: string) {
    const files = new FsObjectStore(root);
    super(files);
    this.files = files;
  }

  private get tmpDir(): string {
    return path.join(this.root, 'uploads', 'tmp');
  }

  private blobPath(sha256: string): string {
    return this.files.pathOf(blobKey(sha256));
  }

  async putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob> {
    await fs.mkdir(this.tmpDir, { recursive: true, mode: PRIVATE_DIR });
    const tmp = path.join(this.tmpDir, randomUUID());
    const { meter, blob } = uploadMeter(maxBytes);
    try {
      await pipeline(stream, meter, createWriteStream(tmp, { flags: 'wx', mode: PRIVATE_FILE }));
      const { sha256, size } = blob();
      const dest = this.blobPath(sha256);
      await fs.mkdir(path.dirname(dest), { recursive: true, mode: PRIVATE_DIR });
      const existed = await fs.stat(dest).then(
        () => true,
        () => false,
      );
      // rename is atomic: a concurrent identical upload just replaces the blob with the same bytes.
      await fs.rename(tmp, dest);
      const ino = (await fs.stat(dest)).ino;
      const entry = this.holdUpload(sha256, existed);
      if (entry) entry.ino = ino;
      return { sha256, size };
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async settleUpload(blob: StoredBlob, outcome: 'kept' | 'discarded'): Promise<void> {
    const entry = this.releaseUpload(blob.sha256, outcome);
    if (!entry) return;
    const dest = this.blobPath(blob.sha256);
    // Another process renamed its copy of the same bytes over ours (other inode), or a job retains it:
    // it is in use.
    const current = await fs.stat(dest).catch(() => null);
    if (current && current.ino === entry.ino && current.nlink === 1 && !(await this.isRetained(blob.sha256))) await fs.rm(dest, { force: true });
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
}
