import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  assertJobId,
  isSafeRelativeName,
  type AssetStorage,
  type StoredBlob,
  type StoredObject,
  type StoredOutput,
} from './asset-storage.js';
import { removePrefix, type ObjectStore } from './object-store.js';

const SHA256 = /^[0-9a-f]{64}$/;

/** Key of an upload blob: content-addressed, fanned out by the digest's first byte. */
export function blobKey(sha256: string): string {
  if (!SHA256.test(sha256)) throw new Error(`Not a sha256 digest: ${sha256}`);
  return `uploads/sha256/${sha256.slice(0, 2)}/${sha256}`;
}

const Manifest = z.object({
  outputs: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative(), sha256: z.string(), modifiedAt: z.string() })),
});
/** An upload blob that requests of this process created: how many hold it, whether any kept it. */
export interface PendingBlob {
  holders: number;
  kept: boolean;
  /** The inode last renamed into place (local storage: another process's rename replaces it). */
  ino?: number;
}

const RetainedInputs = z.object({ sha256: z.array(z.string().regex(SHA256)) });

/**
 * The job-level half of AssetStorage, once for both back ends (each adds how it receives uploads). Keys:
 *   uploads/sha256/<aa>/<hash>      upload blobs (written by the implementation's putUpload)
 *   holders/<hash>/<jobId>          one empty object per job that retains the blob
 *   jobs/<jobId>/inputs.json        the blobs the job retains (what deleteJob releases)
 *   jobs/<jobId>/checkpoints/<name> stage checkpoints: what a retry on another machine resumes from
 *   jobs/<jobId>/outputs/<name>     published outputs
 *   jobs/<jobId>/outputs.json       the published listing, written last (readers trust only it)
 */
export abstract class JobData implements Omit<AssetStorage, 'putUpload' | 'settleUpload' | 'removeStaleUploads'> {
  /** Blobs that uploads in flight in this process created (they were not stored before), by digest. */
  private readonly pending = new Map<string, PendingBlob>();

  constructor(protected readonly objects: ObjectStore) {}

  /** True while a request in this process still holds the blob (it must not be deleted under it). */
  protected inFlight(sha256: string): boolean {
    return this.pending.has(sha256);
  }

  /**
   * An upload of this process now holds the blob (`existed`: it was stored before this upload). Returns
   * the blob's entry while uploads of this process created it, to which the back end may add what it needs.
   */
  protected holdUpload(sha256: string, existed: boolean): PendingBlob | undefined {
    const entry = this.pending.get(sha256);
    if (entry) entry.holders++;
    else if (!existed) {
      const created: PendingBlob = { holders: 1, kept: false };
      this.pending.set(sha256, created);
      return created;
    }
    return entry;
  }

  /**
   * One holder of the blob is done with it. Returns its entry when that was the last holder, none kept it
   * and uploads of this process created it: the back end then removes the blob unless a job retains it.
   */
  protected releaseUpload(sha256: string, outcome: 'kept' | 'discarded'): PendingBlob | null {
    const entry = this.pending.get(sha256);
    if (!entry) return null;
    entry.holders--;
    if (outcome === 'kept') entry.kept = true;
    if (entry.holders > 0) return null;
    this.pending.delete(sha256);
    return entry.kept ? null : entry;
  }

  private jobPrefix(jobId: string): string {
    assertJobId(jobId);
    return `jobs/${jobId}/`;
  }

  /** True when some job still retains the blob. */
  async isRetained(sha256: string): Promise<boolean> {
    return (await this.objects.list(`holders/${sha256}/`)).length > 0;
  }

  async openUpload(blob: StoredBlob): Promise<StoredObject | null> {
    return this.objects.open(blobKey(blob.sha256));
  }

  async hasUpload(blob: StoredBlob): Promise<boolean> {
    return (await this.objects.sizeOf(blobKey(blob.sha256))) === blob.size;
  }

  async retainInputs(jobId: string, blobs: readonly StoredBlob[]): Promise<void> {
    const listKey = `${this.jobPrefix(jobId)}inputs.json`;
    const before = await this.retainedBy(jobId);
    const all = [...new Set([...before, ...blobs.map((b) => b.sha256)])];
    for (const sha256 of all) blobKey(sha256);
    // The list first: a deleteJob that runs after any holder exists finds every holder to release.
    await this.objects.putBytes(listKey, Buffer.from(JSON.stringify({ sha256: all })));
    for (const sha256 of all) await this.objects.putBytes(`holders/${sha256}/${jobId}`, Buffer.alloc(0));
  }

  private async retainedBy(jobId: string): Promise<string[]> {
    const bytes = await this.objects.readBytes(`${this.jobPrefix(jobId)}inputs.json`);
    return bytes ? RetainedInputs.parse(JSON.parse(bytes.toString('utf8'))).sha256 : [];
  }

  async publishOutputs(jobId: string, dir: string): Promise<StoredOutput[]> {
    const prefix = `${this.jobPrefix(jobId)}outputs/`;
    const names = (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .sort();
    const outputs: StoredOutput[] = [];
    for (const name of names) {
      const file = path.join(dir, ...name.split('/'));
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of createReadStream(file)) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      await this.objects.putFile(`${prefix}${name}`, file);
      outputs.push({ name, size, sha256: hash.digest('hex'), modifiedAt: new Date().toISOString() });
    }
    await this.objects.putBytes(`${this.jobPrefix(jobId)}outputs.json`, Buffer.from(JSON.stringify({ outputs })));
    // Files an earlier publication had and this one does not.
    const published = new Set(names.map((n) => `${prefix}${n}`));
    await this.objects.remove((await this.objects.list(prefix)).filter((key) => !published.has(key)));
    return outputs;
  }

  async listOutputs(jobId: string): Promise<StoredOutput[]> {
    const bytes = await this.objects.readBytes(`${this.jobPrefix(jobId)}outputs.json`);
    return bytes ? Manifest.parse(JSON.parse(bytes.toString('utf8'))).outputs : [];
  }

  async openOutput(jobId: string, name: string): Promise<StoredObject | null> {
    // Only names the listing holds: nothing else under the job (or outside it) can be read this way.
    if (!isSafeRelativeName(name)) return null;
    const outputs = await this.listOutputs(jobId);
    if (!outputs.some((o) => o.name === name)) return null;
    return this.objects.open(`${this.jobPrefix(jobId)}outputs/${name}`);
  }

  async removeOutputs(jobId: string): Promise<void> {
    // The listing first: from then on no reader sees outputs that are being removed.
    await this.objects.remove([`${this.jobPrefix(jobId)}outputs.json`]);
    await removePrefix(this.objects, `${this.jobPrefix(jobId)}outputs/`);
  }

  async saveCheckpoint(jobId: string, name: string, file: string): Promise<void> {
    if (!isSafeRelativeName(name)) throw new Error(`Not a checkpoint name: ${name}`);
    await this.objects.putFile(`${this.jobPrefix(jobId)}checkpoints/${name}`, file);
  }

  async loadCheckpoints(jobId: string, dir: string): Promise<string[]> {
    const prefix = `${this.jobPrefix(jobId)}checkpoints/`;
    const names: string[] = [];
    for (const key of await this.objects.list(prefix)) {
      const name = key.slice(prefix.length);
      if (!isSafeRelativeName(name)) continue;
      const object = await this.objects.open(key);
      // Removed since the listing (the job is being cleaned up): nothing to resume from.
      if (!object) continue;
      const dest = path.join(dir, ...name.split('/'));
      await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
      const tmp = `${dest}.${randomUUID()}.tmp`;
      try {
        await pipeline(object.stream, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
        await fs.rename(tmp, dest);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        throw err;
      }
      names.push(name);
    }
    return names.sort();
  }

  async removeCheckpointFiles(jobId: string, names: readonly string[]): Promise<void> {
    for (const name of names) if (!isSafeRelativeName(name)) throw new Error(`Not a checkpoint name: ${name}`);
    await this.objects.remove(names.map((name) => `${this.jobPrefix(jobId)}checkpoints/${name}`));
  }

  async removeCheckpoints(jobId: string): Promise<void> {
    await removePrefix(this.objects, `${this.jobPrefix(jobId)}checkpoints/`);
  }

  async deleteJob(jobId: string): Promise<void> {
    await this.removeOutputs(jobId);
    await this.removeCheckpoints(jobId);
    for (const sha256 of await this.retainedBy(jobId)) {
      await this.objects.remove([`holders/${sha256}/${jobId}`]);
      if (!this.inFlight(sha256) && !(await this.isRetained(sha256))) await this.objects.remove([blobKey(sha256)]);
    }
    await removePrefix(this.objects, this.jobPrefix(jobId));
  }
}
