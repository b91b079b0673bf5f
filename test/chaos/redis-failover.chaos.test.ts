import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RedisClient } from '../../common/redis.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { SENTINEL_MASTER, startRedisHa, type RedisHa } from '../helpers/redis-ha.js';
import { loadConfig, orchestratorWorkerSchema } from '../../common/config.js';
import { JobLog } from '../../common/job-log.js';
import { JobMessage, progressChannel, type ProgressFields } from '../../common/progress.js';
import { createRedis, describeRedis, redisConnection } from '../../common/redis.js';

function progress(done: number): ProgressFields {
  return {
    jobId: 'job-failover',
    owner: 'alice',
    stage: 'lods',
    stageIndex: 3,
    stageCount: 6,
    done,
    total: 1000,
    unit: 'steps',
    percent: 50,
    message: `step ${done}`,
    etaMs: null,
    attempt: 1,
    ts: Date.now(),
  };
}

describe('Redis through Sentinels (master, replica, three Sentinels on loopback)', () => {
  let dir: string;
  let ha: RedisHa;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-redis-ha-'));
    ha = await startRedisHa(dir);
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await ha?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads REDIS_SENTINELS from the environment and refuses a malformed list, naming the variable', () => {
    const env = { REDIS_SENTINELS: ha.sentinelList, REDIS_PASSWORD: 'not-in-logs' };
    const connection = redisConnection(loadConfig(orchestratorWorkerSchema, env));
    expect(connection).toMatchObject({ name: SENTINEL_MASTER, password: 'not-in-logs' });
    expect('sentinels' in connection && connection.sentinels.length).toBe(3);
    expect(describeRedis(connection)).not.toContain('not-in-logs');
    for (const bad of ['127.0.0.1', 'redis://127.0.0.1:26379', ',', ' , ', 'a:1,b', 'host:port']) {
      expect(() => loadConfig(orchestratorWorkerSchema, { REDIS_SENTINELS: bad }), bad).toThrow(/REDIS_SENTINELS/);
    }
  });

  it('keeps publishing and delivering after kill -9 of the master: the replica is promoted, the script and the subscription follow', async () => {
    const connection = redisConnection(loadConfig(orchestratorWorkerSchema, { REDIS_SENTINELS: ha.sentinelList }));
    const publisher = createRedis(connection, 'publisher');
    const subscriber = createRedis(connection, 'subscriber');
    clients.push(publisher, subscriber);
    const log = new JobLog(publisher, { ttlSeconds: 600 });
    const received: JobMessage[] = [];
    subscriber.on('message', (_channel, text: string) => received.push(JobMessage.parse(JSON.parse(text))));
    await subscriber.subscribe(progressChannel('alice', 'job-failover'));
    // A publisher has no offline queue: before it is ready a publish is a counted drop, not a delay.
    if (publisher.status !== 'ready') await once(publisher, 'ready');

    const before: number[] = [];
    for (let i = 1; i <= 20; i++) before.push(await log.publishProgress(progress(i)));
    expect(before).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await waitFor(() => received.length === 20, { timeoutMs: 5000, what: '20 messages before the failover' });

    const oldMaster = await ha.masterPort();
    // Wait until the replica has every write, as a healthy replica soon does: the test is about the failover.
    const replica = [...ha.servers.keys()].find((p) => p !== oldMaster)!;
    const replicaClient = createRedis(`redis://127.0.0.1:${replica}`, 'reader');
    clients.push(replicaClient);
    await waitFor(async () => (await replicaClient.get('job:{job-failover}:seq')) === '20', {
      timeoutMs: 10_000,
      what: 'the replica to hold seq 20',
    });
    process.kill(ha.servers.get(oldMaster)!.process.child.pid!, 'SIGKILL');
    await ha.servers.get(oldMaster)!.process.exited;
    ha.servers.delete(oldMaster);

    // Publishers never wait on Redis: while there is no master a publish fails fast (a counted drop).
    let dropped = 0;
    let done = 20;
    const after: number[] = [];
    await waitFor(
      async () => {
        try {
          after.push(await log.publishProgress(progress(++done)));
          return after.length >= 10;
        } catch {
          dropped++;
          return false;
        }
      },
      { timeoutMs: 60_000, what: 'publishes to succeed on the promoted replica', intervalMs: 50 },
    );
    expect(await ha.masterPort()).toBe(replica);
    // The new master continues the job's sequence: no seq is handed out twice.
    expect(after[0]).toBe(21);
    expect(after).toEqual(Array.from({ length: after.length }, (_, i) => 21 + i));
    // The subscriber re-subscribed on the new master by itself and gets what was published there.
    await waitFor(() => received.some((m) => m.seq === after.at(-1)), {
      timeoutMs: 10_000,
      what: 'the last message through the new master',
    });
    const seqs = received.map((m) => m.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.filter((s) => s > 20)).toEqual(after.filter((s) => seqs.includes(s)));
    console.log(`[redis-ha] failover: ${dropped} publishes dropped while no master answered, ${after.length} after it`);

    // The old master comes back as a replica of the new one; writes keep going to the new master.
    await ha.restart(oldMaster);
    await waitFor(
      async () => {
        const info = await createRedisOnce(oldMaster, 'INFO', 'replication');
        return info.includes('role:slave') && info.includes('master_link_status:up');
      },
      { timeoutMs: 30_000, what: 'the old master to rejoin as a replica' },
    );
    expect(await log.publishProgress(progress(++done))).toBe(after.at(-1)! + 1);
  });
});

async function createRedisOnce(port: number, ...command: [string, ...string[]]): Promise<string> {
  const client = createRedis(`redis://127.0.0.1:${port}`, 'reader');
  try {
    return String(await client.call(...command));
  } finally {
    client.disconnect();
  }
}
