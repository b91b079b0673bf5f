import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer } from '../scripts/lib/redis-server.js';
import { waitFor } from '../scripts/lib/wait.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { createRedis } from './redis.js';

/** When the first SUBSCRIBE of a fresh connection is sent, relative to ioredis's connection states. */
const MOMENTS = ['at once (connecting)', "at 'connect' (handshaking)", "at 'ready'"] as const;

function subscribeAt(sub: Redis, moment: (typeof MOMENTS)[number], channel: string): Promise<unknown> {
  if (moment === 'at once (connecting)') return sub.subscribe(channel);
  return once(sub, moment === "at 'ready'" ? 'ready' : 'connect').then(() => sub.subscribe(channel));
}

/** Resolves once the connection is ready, so any reconnect a failed handshake caused is behind it. */
async function settled(sub: Redis): Promise<void> {
  if (sub.status !== 'ready') await once(sub, 'ready');
  await sub.ping();
}

describe("createRedis(…, 'subscriber')", () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let publisher: Redis;
  let restarted: Awaited<ReturnType<typeof startRedisServer>> | undefined;

  beforeAll(async () => {
    redis = await startTestRedis({ persist: true });
    publisher = new Redis(redis.url);
  });
  afterAll(async () => {
    publisher?.disconnect();
    await restarted?.stop();
    await redis?.stop();
  });

  it('keeps every channel subscribed, whenever in the connection handshake the SUBSCRIBE was sent', async () => {
    for (const moment of MOMENTS) {
      for (let i = 0; i < 5; i++) {
        const sub = createRedis(redis.url, 'subscriber');
        const heard: string[] = [];
        sub.on('message', (channel: string, message: string) => heard.push(`${channel}=${message}`));
        const channel = `moment-${MOMENTS.indexOf(moment)}-${i}`;
        const subscribed = subscribeAt(sub, moment, channel);
        // A pattern too, sent in the same moment: the API listens with both.
        const patterned = subscribed.then(() => sub.psubscribe(`${channel}:*`));
        await Promise.all([subscribed, patterned]);
        await settled(sub);
        expect(await publisher.publish(channel, 'hello'), `${moment} #${i}: receivers of ${channel}`).toBe(1);
        expect(await publisher.publish(`${channel}:x`, 'pattern'), `${moment} #${i}: receivers of ${channel}:x`).toBe(1);
        await waitFor(() => heard.length >= 1, { timeoutMs: 5000, what: `the message on ${channel}` });
        expect(heard).toEqual([`${channel}=hello`]);
        sub.disconnect();
      }
    }
  });

  it('after a Redis restart, hears both the channels it had and one subscribed while reconnecting', async () => {
    const sub = createRedis(redis.url, 'subscriber');
    sub.on('error', () => {});
    const heard = new Set<string>();
    sub.on('message', (channel: string) => heard.add(channel));
    await sub.subscribe('before-restart');
    await settled(sub);

    await redis.process.stop();
    // The next connection's handshake is where a SUBSCRIBE used to be lost: send one exactly then.
    const duringHandshake = once(sub, 'connect').then(() => sub.subscribe('during-reconnect'));
    restarted = await startRedisServer({ port: redis.port, dir: redis.dir, persist: false });
    try {
      await duringHandshake;
      await settled(sub);
      await waitFor(async () => (await publisher.ping()) === 'PONG', { timeoutMs: 20_000, what: 'the publisher to reconnect' });
      expect(await publisher.publish('before-restart', 'x'), 'receivers of the channel it had').toBe(1);
      expect(await publisher.publish('during-reconnect', 'x'), 'receivers of the channel subscribed while reconnecting').toBe(1);
      await waitFor(() => heard.size === 2, { timeoutMs: 5000, what: 'both messages' });
      expect([...heard].sort()).toEqual(['before-restart', 'during-reconnect']);
    } finally {
      sub.disconnect();
    }
  });
});
