import { z } from 'zod';
import type { RedisClient } from '../common/redis.js';
import type { StoredBlob } from '../storage/asset-storage.js';
import { Sha256 } from '../common/uploads.js';

const FinishedUpload = z.object({ owner: z.string(), sha256: Sha256, size: z.number().int().nonnegative() });

/** Every finished upload by the time its wait for a job ends (ms since epoch): what the sweep releases. */
const WAITING_KEY = 'uploads:finished-until';

/**
 * Finished uploads, in Redis so that every API process sees them: each upload id names one owner's
 * stored blob until a job uses it (kept ttlSeconds), and each owner's set of digests says which bytes
 * that owner has already sent, so a second upload of the same bytes sends nothing. Scoped by owner:
 * knowing a digest never gives access to someone else's content.
 */
export class FinishedUploads {
  constructor(
    private readonly redis: RedisClient,
    private readonly ttlSeconds: number,
  ) {}

  private static recordKey(id: string): string {
    return `upload:${id}`;
  }

  private static heldKey(owner: string): string {
    return `upload-held:{${owner}}`;
  }

  /** Records that owner's upload id holds blob, and that owner holds those bytes. */
  async add(id: string, owner: string, blob: StoredBlob): Promise<void> {
    await this.redis.zadd(WAITING_KEY, Date.now() + this.ttlSeconds * 1000, id);
    await this.redis.set(FinishedUploads.recordKey(id), JSON.stringify({ owner, ...blob }), 'EX', this.ttlSeconds);
    await this.redis.hset(FinishedUploads.heldKey(owner), blob.sha256, String(blob.size));
  }

  /** Upload ids whose wait for a job is over (their records have expired or are about to). */
  async overdue(now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(WAITING_KEY, 0, now);
  }

  /** Done with an overdue upload id: it is no longer listed. */
  async released(id: string): Promise<void> {
    await this.redis.zrem(WAITING_KEY, id);
    await this.redis.del(FinishedUploads.recordKey(id));
  }

  /** The blob of owner's finished upload id; null when it is unknown, expired or someone else's. */
  async get(owner: string, id: string): Promise<StoredBlob | null> {
    const raw = await this.redis.get(FinishedUploads.recordKey(id));
    const parsed = raw ? FinishedUpload.safeParse(JSON.parse(raw)) : null;
    if (!parsed?.success || parsed.data.owner !== owner) return null;
    return { sha256: parsed.data.sha256, size: parsed.data.size };
  }

  /** Whether owner has uploaded these exact bytes before (the store may have deleted them since: check it too). */
  async holds(owner: string, blob: StoredBlob): Promise<boolean> {
    const size = await this.redis.hget(FinishedUploads.heldKey(owner), blob.sha256);
    return size !== null && Number(size) === blob.size;
  }

  /** Forgets that owner holds blob (its bytes are gone from the store). */
  async forget(owner: string, blob: StoredBlob): Promise<void> {
    await this.redis.hdel(FinishedUploads.heldKey(owner), blob.sha256);
  }
}
