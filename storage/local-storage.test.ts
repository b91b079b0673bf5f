import { mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadTooLargeError } from './asset-storage.js';
import { LocalStorage } from './local-storage.js';

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

  it('streams an upload in, content-addressed, and lays it out under the artist’s name', async () => {
    const blob = await storage.putUpload(Readable.from([Buffer.from('glTF'), Buffer.from('-bytes')]), 1024);
    expect(blob).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), size: 10 });
    const dir = await storage.materializeInputs('asset-a-1', [{ name: 'model.glb', ...blob }]);
    expect(await fs.readFile(path.join(dir, 'model.glb'), 'utf8')).toBe('glTF-bytes');
  });

  it('refuses an upload over the limit and leaves nothing behind', async () => {
    await expect(storage.putUpload(Readable.from([Buffer.alloc(2048)]), 1024)).rejects.toBeInstanceOf(UploadTooLargeError);
    expect(await fs.readdir(path.join(root, 'uploads', 'tmp'))).toEqual([]);
  });

  it('keeps work and outputs apart, removes each idempotently, and never resolves an output outside the job', async () => {
    const work = await storage.workDir('asset-a-2');
    const out = await storage.outputDir('asset-a-2');
    await fs.writeFile(path.join(work, 'optimized.glb'), 'x');
    await fs.writeFile(path.join(out, 'model-lod0.glb'), 'y');
    expect(await storage.outputPath('asset-a-2', 'model-lod0.glb')).toBe(path.join(out, 'model-lod0.glb'));
    expect(await storage.outputPath('asset-a-2', '../../work/asset-a-2/optimized.glb')).toBeNull();

    await storage.removeWork('asset-a-2');
    await storage.removeWork('asset-a-2');
    await expect(fs.stat(work)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await storage.outputPath('asset-a-2', 'model-lod0.glb')).not.toBeNull();
    await storage.removeOutputs('asset-a-2');
    await storage.removeOutputs('asset-a-2');
    expect(await storage.outputPath('asset-a-2', 'model-lod0.glb')).toBeNull();
    await expect(storage.workDir('../escape')).rejects.toThrow(/Not a job id/);
  });
});
