import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-ha.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { expectSnapshotsAgree, reportFigures } from './chaos-stack.js';
import { JobObserver } from './job-observer.js';

const USERS = ['ana', 'ben', 'cho'];
const JOBS = 9;

/**
 * Every process on a Redis Cluster of three masters (REDIS_CLUSTER_NODES): jobs run end to end, each job's
 * keys and its publish script stay in one slot, their slots spread over the nodes, and both per-job
 * subscriptions and subscribeAll (a pattern subscription) deliver through the cluster.
 */
describe('Redis Cluster', () => {
  let dir: string;
  let cluster: RedisCluster;
  let stack: TestStack;
  let observer: JobObserver;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-redis-cluster-'));
    cluster = await startRedisCluster(dir);
    // The stack's own plain Redis stays unused: every process is pointed at the cluster.
    stack = await startStack({ env: { REDIS_CLUSTER_NODES: cluster.nodeList, API_SUBMIT_BURST: '50' } });
  });
  afterAll(async () => {
    observer?.close();
    await stack?.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs jobs end to end with their progress streamed through the cluster', async () => {
    observer = new JobObserver(stack.wsUrl, (user) => stack.tokenFor(user));
    // One subscribeAll socket: its pattern subscription must see every job of its user finish.
    const all = new WebSocket(stack.wsUrl, ['asset-farm.v1', `bearer.${stack.tokenFor('ana')}`]);
    const finishedForAna = new Set<string>();
    all.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; event?: string; jobId?: string };
      if (m.type === 'event' && m.event === 'completed' && m.jobId) finishedForAna.add(m.jobId);
    });
    await new Promise<void>((resolve, reject) => {
      all.once('error', reject);
      all.on('message', (data) => {
        if ((JSON.parse(data.toString()) as { type: string }).type === 'subscribed') resolve();
      });
      all.once('open', () => all.send(JSON.stringify({ type: 'subscribeAll' })));
    });

    const jobs = await Promise.all(
      Array.from({ length: JOBS }, async (_, i) => {
        const user = USERS[i % USERS.length]!;
        const res = await uploadAsset(stack.apiUrl, stack.tokenFor(user), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
        expect(res.status, `upload ${i}`).toBe(202);
        const { jobId } = (await res.json()) as { jobId: string };
        observer.track(user, jobId);
        return { user, jobId };
      }),
    );
    await observer.settled(300_000);
    const figures = observer.figures();
    reportFigures('redis cluster', figures);
    expect(figures.completed).toBe(JOBS);
    await expectSnapshotsAgree(stack, observer);
    const anas = jobs.filter((j) => j.user === 'ana').map((j) => j.jobId);
    await expect.poll(() => anas.filter((id) => finishedForAna.has(id)).length, { timeout: 10_000 }).toBe(anas.length);
    all.terminate();

    // The jobs' data sits on more than one node: the cluster really shards it.
    const keysPerNode = await Promise.all(
      cluster.servers.map(async (server) => {
        const client = new Redis(server.url);
        try {
          return await client.dbsize();
        } finally {
          client.disconnect();
        }
      }),
    );
    console.log(`[redis-cluster] keys per node: ${keysPerNode.join(', ')}`);
    expect(keysPerNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });
});
