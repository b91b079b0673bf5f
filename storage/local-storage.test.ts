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

  it('removes a failed request’s blobs only when it created them and nothing else needs them', async () => {
    const blobFile = (sha: string) => path.join(root, 'uploads', 'sha256', sha.slice(0, 2), sha);
    const put = (text: string) => storage.putUpload(Readable.from([Buffer.from(text)]), 1024);
    // Created by this request and used by nobody: removed.
    const fresh = await put('fresh bytes');
    await storage.settleUpload(fresh, 'discarded');
    await expect(fs.stat(blobFile(fresh.sha256))).rejects.toMatchObject({ code: 'ENOENT' });
    // The same file twice in one failed request: removed once both are settled.
    const [twice1, twice2] = [await put('twice'), await put('twice')];
    await storage.settleUpload(twice1, 'discarded');
    expect(await fs.stat(blobFile(twice1.sha256))).toBeTruthy();
    await storage.settleUpload(twice2, 'discarded');
    await expect(fs.stat(blobFile(twice1.sha256))).rejects.toMatchObject({ code: 'ENOENT' });
    // Two requests with the same bytes, one fails and one starts a job, in either order: kept.
    for (const order of [
      ['discarded', 'kept'],
      ['kept', 'discarded'],
    ] as const) {
      const [a, b] = [await put(`shared ${order[0]}`), await put(`shared ${order[0]}`)];
      await storage.settleUpload(a, order[0]);
      await storage.settleUpload(b, order[1]);
      expect((await fs.stat(blobFile(a.sha256))).isFile()).toBe(true);
    }
    // Already stored before this request (an earlier job's upload): kept.
    const earlier = await put('earlier bytes');
    await storage.settleUpload(earlier, 'kept');
    const again = await put('earlier bytes');
    await storage.settleUpload(again, 'discarded');
    expect((await fs.stat(blobFile(earlier.sha256))).isFile()).toBe(true);
    // Created by this request, but a job has laid it out meanwhile: kept.
    const linked = await put('linked bytes');
    await storage.materializeInputs('asset-a-3', [{ name: 'model.glb', ...linked }]);
    await storage.settleUpload(linked, 'discarded');
    expect((await fs.stat(blobFile(linked.sha256))).isFile()).toBe(true);
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
