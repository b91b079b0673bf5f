import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/assets/seeded-random.js';
import { UploadTooLargeError, type AssetStorage, type StoredObject } from './asset-storage.js';

/** An implementation under test, and a count of every object (or file) it holds, whatever its kind. */
export interface ContractSubject {
  storage: AssetStorage;
  countObjects(): Promise<number>;
}

async function bytesOf(object: StoredObject | null): Promise<Buffer | null> {
  if (!object) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of object.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Output names that try to leave the job's outputs, generated in variety from a seed. */
function escapingNames(seed: number, count: number): string[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const bad = ['..', '.', '', '\0', '..\\..', '/etc', '%2e%2e'];
  const good = ['report.json', 'a', 'lod0.glb', 'sub'];
  const names = new Set<string>([
    '../outputs.json',
    '/report.json',
    'report.json/',
    'a//b',
    '../checkpoints/optimized.glb',
    '..\\report.json',
  ]);
  while (names.size < count) {
    const parts = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(good));
    parts.splice(Math.floor(random() * (parts.length + 1)), 0, pick(bad));
    names.add(random() < 0.2 ? `/${parts.join('/')}` : parts.join(random() < 0.2 ? '\\' : '/'));
  }
  return [...names].filter((n) => !['report.json', 'sub/lod0.glb'].includes(n));
}

/**
 * What every AssetStorage implementation must do, run against each one (storage/*.test.ts): the API and
 * the HPC workers rely on exactly this, whichever STORAGE is configured.
 */
export function describeStorageContract(name: string, start: () => Promise<ContractSubject & { stop(): Promise<void> }>): void {
  describe(`${name} (storage contract)`, () => {
    let subject: ContractSubject & { stop(): Promise<void> };
    let storage: AssetStorage;
    let local: string;
    const put = (text: string | Buffer) => storage.putUpload(Readable.from([Buffer.from(text)]), 1 << 20);
    beforeAll(async () => {
      subject = await start();
      storage = subject.storage;
      local = await fs.mkdtemp(path.join(os.tmpdir(), 'asset-farm-contract-'));
    });
    afterAll(async () => {
      await subject?.stop();
      if (local) await fs.rm(local, { recursive: true, force: true });
    });

    it('stores an upload by its content, opens it again, and keeps the same bytes once', async () => {
      const before = await subject.countObjects();
      const blob = await storage.putUpload(Readable.from([Buffer.from('glTF'), Buffer.from('-bytes')]), 1024);
      expect(blob).toEqual({ sha256: sha256('glTF-bytes'), size: 10 });
      expect((await bytesOf(await storage.openUpload(blob)))?.toString()).toBe('glTF-bytes');
      const again = await put('glTF-bytes');
      expect(again).toEqual(blob);
      expect(await subject.countObjects()).toBe(before + 1);
      expect(await storage.openUpload({ sha256: sha256('never uploaded'), size: 14 })).toBeNull();
      expect(await storage.hasUpload(blob)).toBe(true);
      expect(await storage.hasUpload({ ...blob, size: blob.size + 1 })).toBe(false);
      expect(await storage.hasUpload({ sha256: sha256('never uploaded'), size: 14 })).toBe(false);
    });

    it('refuses an upload over the limit and leaves nothing behind', async () => {
      const before = await subject.countObjects();
      await expect(storage.putUpload(Readable.from([Buffer.alloc(700), Buffer.alloc(700)]), 1024)).rejects.toBeInstanceOf(
        UploadTooLargeError,
      );
      expect(await subject.countObjects()).toBe(before);
      expect(await storage.removeStaleUploads(0)).toBe(0);
    });

    it('removes a failed request’s blobs only when it created them and nothing else needs them', async () => {
      const stored = async (blob: { sha256: string; size: number }) => (await storage.openUpload(blob)) !== null;
      const fresh = await put('fresh bytes');
      await storage.settleUpload(fresh, 'discarded');
      expect(await stored(fresh)).toBe(false);
      // The same file twice in one failed request: removed once both are settled.
      const [twice1, twice2] = [await put('twice'), await put('twice')];
      await storage.settleUpload(twice1, 'discarded');
      expect(await stored(twice1)).toBe(true);
      await storage.settleUpload(twice2, 'discarded');
      expect(await stored(twice1)).toBe(false);
      // Two requests with the same bytes, one fails and one starts a job, in either order: kept.
      for (const order of [
        ['discarded', 'kept'],
        ['kept', 'discarded'],
      ] as const) {
        const [a, b] = [await put(`shared ${order[0]}`), await put(`shared ${order[0]}`)];
        await storage.settleUpload(a, order[0]);
        await storage.settleUpload(b, order[1]);
        expect(await stored(a)).toBe(true);
      }
      // Already stored before this request (an earlier job's upload): kept.
      const earlier = await put('earlier bytes');
      await storage.settleUpload(earlier, 'kept');
      const again = await put('earlier bytes');
      await storage.settleUpload(again, 'discarded');
      expect(await stored(earlier)).toBe(true);
      // Created by this request, but a job retains it meanwhile: kept.
      const retained = await put('retained bytes');
      await storage.retainInputs('asset-a-retains', [retained]);
      await storage.settleUpload(retained, 'discarded');
      expect(await stored(retained)).toBe(true);
    });

    it('publishes a folder as a job’s outputs all at once, lists them with digests and streams each back', async () => {
      const dir = path.join(local, 'publish');
      await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
      await fs.writeFile(path.join(dir, 'report.json'), '{"ok":true}');
      await fs.writeFile(path.join(dir, 'sub', 'lod0.glb'), Buffer.alloc(300_000, 7));
      expect(await storage.listOutputs('asset-a-out')).toEqual([]);
      const published = await storage.publishOutputs('asset-a-out', dir);
      const listed = await storage.listOutputs('asset-a-out');
      expect(listed).toEqual(published);
      expect(listed.map((o) => [o.name, o.size, o.sha256])).toEqual([
        ['report.json', 11, sha256('{"ok":true}')],
        ['sub/lod0.glb', 300_000, sha256(Buffer.alloc(300_000, 7))],
      ]);
      const opened = await storage.openOutput('asset-a-out', 'sub/lod0.glb');
      expect(opened?.size).toBe(300_000);
      expect(sha256((await bytesOf(opened))!)).toBe(listed[1]!.sha256);
      // Published again without one file: the listing and the store both lose it.
      await fs.rm(path.join(dir, 'sub'), { recursive: true });
      await storage.publishOutputs('asset-a-out', dir);
      expect((await storage.listOutputs('asset-a-out')).map((o) => o.name)).toEqual(['report.json']);
      expect(await storage.openOutput('asset-a-out', 'sub/lod0.glb')).toBeNull();
      // Another job's outputs are not this job's.
      expect(await storage.openOutput('asset-a-other', 'report.json')).toBeNull();
    });

    it('opens no output by a name that leaves the job’s outputs (seeded variety)', async () => {
      const dir = path.join(local, 'escape');
      await fs.mkdir(path.join(dir, 'sub'), { recursive: true });
      await fs.writeFile(path.join(dir, 'report.json'), 'r');
      await storage.publishOutputs('asset-a-escape', dir);
      const file = path.join(local, 'escape-checkpoint');
      await fs.writeFile(file, 'checkpoint');
      await storage.saveCheckpoint('asset-a-escape', 'optimized.glb', file);
      const names = escapingNames(20, 60);
      expect(names.length).toBeGreaterThanOrEqual(55);
      for (const name of names) expect(await storage.openOutput('asset-a-escape', name), name).toBeNull();
      expect(await storage.openOutput('asset-a-escape', 'report.json')).not.toBeNull();
      await expect(storage.listOutputs('../jobs')).rejects.toThrow(/Not a job id/);
      await expect(storage.saveCheckpoint('asset-a-escape', '../outputs.json', file)).rejects.toThrow(/Not a checkpoint name/);
    });

    it('saves checkpoints by name and loads them all into another folder, as a retry elsewhere does', async () => {
      const work = path.join(local, 'work-a');
      await fs.mkdir(path.join(work, 'textures'), { recursive: true });
      await fs.writeFile(path.join(work, 'optimized.glb'), 'optimized');
      await fs.writeFile(path.join(work, 'textures', '0.json'), '{"index":0}');
      await storage.saveCheckpoint('asset-a-ckpt', 'optimized.glb', path.join(work, 'optimized.glb'));
      await storage.saveCheckpoint('asset-a-ckpt', 'textures/0.json', path.join(work, 'textures', '0.json'));
      await fs.writeFile(path.join(work, 'optimized.glb'), 'optimized again');
      await storage.saveCheckpoint('asset-a-ckpt', 'optimized.glb', path.join(work, 'optimized.glb'));
      const elsewhere = path.join(local, 'work-b');
      expect(await storage.loadCheckpoints('asset-a-ckpt', elsewhere)).toEqual(['optimized.glb', 'textures/0.json']);
      expect(await fs.readFile(path.join(elsewhere, 'optimized.glb'), 'utf8')).toBe('optimized again');
      expect(await fs.readFile(path.join(elsewhere, 'textures', '0.json'), 'utf8')).toBe('{"index":0}');
      expect(await storage.loadCheckpoints('asset-a-none', path.join(local, 'work-c'))).toEqual([]);
      await storage.removeCheckpointFiles('asset-a-ckpt', ['textures/0.json', 'textures/never-stored.json']);
      expect(await storage.loadCheckpoints('asset-a-ckpt', path.join(local, 'work-e'))).toEqual(['optimized.glb']);
      await storage.removeCheckpoints('asset-a-ckpt');
      await storage.removeCheckpoints('asset-a-ckpt');
      expect(await storage.loadCheckpoints('asset-a-ckpt', path.join(local, 'work-d'))).toEqual([]);
    });

    it('deletes a job’s data and its uploads once no job retains them, leaving no object behind', async () => {
      const before = await subject.countObjects();
      const shared = await put('shared by two jobs');
      const own = await put('only job one');
      for (const blob of [shared, own]) await storage.settleUpload(blob, 'kept');
      await storage.retainInputs('asset-a-one', [shared, own]);
      await storage.retainInputs('asset-a-two', [shared]);
      const dir = path.join(local, 'delete');
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'out.glb'), 'out');
      for (const jobId of ['asset-a-one', 'asset-a-two']) {
        await storage.publishOutputs(jobId, dir);
        await storage.saveCheckpoint(jobId, 'lods/lod1.glb', path.join(dir, 'out.glb'));
      }
      await storage.deleteJob('asset-a-one');
      expect(await storage.listOutputs('asset-a-one')).toEqual([]);
      expect(await storage.loadCheckpoints('asset-a-one', path.join(local, 'delete-one'))).toEqual([]);
      expect(await storage.openUpload(own)).toBeNull();
      expect(await storage.openUpload(shared)).not.toBeNull();
      expect((await storage.listOutputs('asset-a-two')).length).toBe(1);
      await storage.deleteJob('asset-a-two');
      await storage.deleteJob('asset-a-two');
      expect(await storage.openUpload(shared)).toBeNull();
      expect(await subject.countObjects()).toBe(before);
    });
  });
}
