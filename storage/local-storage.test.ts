import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadTooLargeError } from './asset-storage.js';
import { LocalStorage } from './local-storage.js';
import { describeStorageContract } from './storage-contract.js';

/** Every file under a folder (empty folders are not counted: they hold nothing). */
async function countFiles(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

describeStorageContract('LocalStorage', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-storage-'));
  return {
    storage: new LocalStorage(dir),
    countObjects: () => countFiles(dir),
    stop: () => fs.rm(dir, { recursive: true, force: true }),
  };
});

describe('LocalStorage', () => {
  let root: string;
  let storage: LocalStorage;
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-storage-'));
    storage = new LocalStorage(root);
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses an upload over the limit and leaves nothing behind', async () => {
    await expect(storage.putUpload(Readable.from([Buffer.alloc(2048)]), 1024)).rejects.toBeInstanceOf(UploadTooLargeError);
    expect(await fs.readdir(path.join(root, 'uploads', 'tmp'))).toEqual([]);
  });

  it('sweeps partial uploads nobody has written to for a while, and only those', async () => {
    const tmp = path.join(root, 'uploads', 'tmp');
    await fs.mkdir(tmp, { recursive: true });
    await fs.writeFile(path.join(tmp, 'abandoned'), 'half an upload');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await fs.utimes(path.join(tmp, 'abandoned'), twoHoursAgo, twoHoursAgo);
    await fs.writeFile(path.join(tmp, 'in-progress'), 'being written');
    expect(await storage.removeStaleUploads(60 * 60 * 1000)).toBe(1);
    expect(await fs.readdir(tmp)).toEqual(['in-progress']);
    await fs.rm(path.join(tmp, 'in-progress'));
    // Nothing uploaded yet on a fresh data folder: nothing to do, no error.
    expect(await new LocalStorage(path.join(root, 'nothing-here')).removeStaleUploads(0)).toBe(0);
  });
});
