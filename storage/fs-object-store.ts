import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { StoredObject } from './asset-storage.js';
import type { ObjectStore } from './object-store.js';

/** Artists' files are this user's only: folders 0700, files 0600 (the umask can only narrow them). */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** An ObjectStore in a local folder: a key is a relative path; writes go to a temporary file renamed into place. */
export class FsObjectStore implements ObjectStore {
  constructor(private readonly root: string) {}

  /** The file of a key (keys are built by this package, never taken from a request unchecked). */
  pathOf(key: string): string {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`Not a storage key: ${key}`);
    return path.join(this.root, ...parts);
  }

  private async writeAtomically(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const dest = this.pathOf(key);
    await fs.mkdir(path.dirname(dest), { recursive: true, mode: PRIVATE_DIR });
    const tmp = `${dest}.${randomUUID()}.part`;
    try {
      await write(tmp);
      await fs.rename(tmp, dest);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  putFile(key: string, file: string): Promise<void> {
    return this.writeAtomically(key, async (tmp) => {
      await fs.copyFile(file, tmp);
      await fs.chmod(tmp, PRIVATE_FILE);
    });
  }

  putBytes(key: string, bytes: Buffer): Promise<void> {
    return this.writeAtomically(key, (tmp) => fs.writeFile(tmp, bytes, { mode: PRIVATE_FILE, flag: 'wx' }));
  }

  async open(key: string): Promise<StoredObject | null> {
    const file = this.pathOf(key);
    // Opened before the stat, so the size is that of the file being read even if it is replaced meanwhile.
    const handle = await fs.open(file, 'r').catch((err: unknown) => {
      if (missing(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
      throw err;
    });
    if (!handle) return null;
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      return null;
    }
    return { stream: handle.createReadStream(), size: stat.size };
  }

  async sizeOf(key: string): Promise<number | null> {
    const stat = await fs.stat(this.pathOf(key)).catch((err: unknown) => {
      if (missing(err)) return null;
      throw err;
    });
    return stat?.isFile() ? stat.size : null;
  }

  async readBytes(key: string): Promise<Buffer | null> {
    return fs.readFile(this.pathOf(key)).catch((err: unknown) => {
      if (missing(err)) return null;
      throw err;
    });
  }

  async list(prefix: string): Promise<string[]> {
    const dir = this.pathOf(prefix.replace(/\/$/, ''));
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch((err: unknown) => {
      if (missing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    });
    return entries
      .filter((e) => e.isFile() && !e.name.endsWith('.part'))
      .map((e) => `${prefix}${path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/')}`);
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const file = this.pathOf(key);
      await fs.rm(file, { force: true });
      // Empty folders are pruned up to the root, so a deleted job leaves no trace on disk.
      for (let dir = path.dirname(file); dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
        const removed = await fs.rmdir(dir).then(
          () => true,
          () => false,
        );
        if (!removed) break;
      }
    }
  }
}
