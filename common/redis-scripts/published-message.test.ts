import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../bench/assets/seeded-random.js';
import { startTestRedis } from '../../test/helpers/redis.js';
import { JobLog } from '../job-log.js';
import { JOB_EVENT_KINDS, ownerPattern, type JobEventFields, type ProgressFields } from '../progress.js';
import { readEventKind, readProgressTs, readPublishedHead, readPublishedOwner } from './published-message.js';

/** Text that tries to look like the fields the readers look for: quotes, keys, braces, unicode, controls. */
const TRAPS = ['"', '\\', '"event":"completed"', ',"ts":1}', '{"type":"event","seq":9,', 'модель', '\u0000', '\n', '}', '😀', ':'];

function randomText(random: () => number): string {
  let text = '';
  const parts = 1 + Math.floor(random() * 6);
  for (let i = 0; i < parts; i++)
    text += random() < 0.5 ? TRAPS[Math.floor(random() * TRAPS.length)] : String.fromCharCode(32 + Math.floor(random() * 95));
  return text;
}

describe('reading messages as publish-job-message.lua builds them', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let client: Redis;
  let subscriber: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url);
    subscriber = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    subscriber?.disconnect();
    await redis?.stop();
  });

  it('agrees with JSON.parse on type, seq, event kind and ts for 400 seeded messages the real script published', async () => {
    const random = seededRandom(1618);
    const jobLog = new JobLog(client, { ttlSeconds: 60 });
    const received: string[] = [];
    subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => received.push(message));
    await subscriber.psubscribe(ownerPattern('alice'), ownerPattern('alice-x'), ownerPattern('a.b@c'));
    const total = 400;
    for (let i = 0; i < total; i++) {
      const owner = ['alice', 'alice-x', 'a.b@c'][Math.floor(random() * 3)]!;
      const jobId = `asset-${owner}-${Math.floor(random() * 5)}`;
      const ts = random() < 0.5 ? Date.now() : Date.now() + random();
      if (random() < 0.5) {
        const fields: ProgressFields = {
          jobId,
          owner,
          stage: randomText(random),
          stageIndex: 0,
          stageCount: 1,
          done: 1,
          total: 2,
          unit: randomText(random),
          percent: random() * 100,
          message: randomText(random),
          etaMs: random() < 0.5 ? null : Math.floor(random() * 1e6),
          attempt: 1,
          ts,
        };
        await jobLog.publishProgress(fields);
      } else {
        const fields: JobEventFields = {
          jobId,
          owner,
          event: JOB_EVENT_KINDS[Math.floor(random() * JOB_EVENT_KINDS.length)]!,
          message: randomText(random),
          ...(random() < 0.3 ? { stage: randomText(random) } : {}),
          ...(random() < 0.3 ? { error: { type: 'INVALID_ASSET', message: randomText(random) } } : {}),
          ...(random() < 0.3 ? { result: { event: 'completed', ts: 1, note: randomText(random) } } : {}),
          ts,
        };
        await jobLog.publishEvent(fields);
      }
    }
    await expect.poll(() => received.length).toBe(total);
    let events = 0;
    for (const raw of received) {
      const parsed = JSON.parse(raw) as { type: 'progress' | 'event'; seq: number; owner: string; event?: string; ts: number };
      expect(readPublishedHead(raw)).toEqual({ type: parsed.type, seq: parsed.seq });
      expect(readPublishedOwner(raw)).toBe(parsed.owner);
      if (parsed.type === 'event') {
        events++;
        expect(readEventKind(raw)).toBe(parsed.event);
        expect(readProgressTs(raw)).toBeUndefined();
      } else {
        expect(readEventKind(raw)).toBeUndefined();
        expect(readProgressTs(raw)).toBe(parsed.ts);
      }
    }
    // Both kinds were exercised.
    expect(events).toBeGreaterThan(100);
    expect(total - events).toBeGreaterThan(100);
  });

  it('recognises nothing in text the script did not build', () => {
    const random = seededRandom(42);
    const samples = ['', '{}', 'null', '{"seq":1,"type":"progress"}', '{"type":"event","seq":"1",', '{"type":"progress","seq":-1,'];
    for (let i = 0; i < 200; i++) {
      const text = randomText(random);
      // A random text may begin with the trap that is a real head; everything else must be refused.
      if (!text.startsWith('{"type":"event","seq":9,')) samples.push(text);
    }
    for (const raw of samples) {
      expect(readPublishedHead(raw), raw).toBeNull();
      expect(readEventKind(raw), raw).toBeUndefined();
      expect(readProgressTs(raw), raw).toBeUndefined();
      expect(readPublishedOwner(raw), raw).toBeUndefined();
    }
  });
});
