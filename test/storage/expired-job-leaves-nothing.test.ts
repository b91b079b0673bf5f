import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHpcActivities } from '../../activities/hpc-activities.js';
import { WorkerScratch } from '../../activities/job-scratch.js';
import { loadConfig, storageSchema } from '../../common/config.js';
import { JobLog } from '../../common/job-log.js';
import type { ProcessAssetInput } from '../../common/jobs.js';
import { createRedis } from '../../common/redis.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { waitFor } from '../../scripts/lib/wait.js';
import type { AssetStorage } from '../../storage/asset-storage.js';
import { createStorage, s3ClientOf } from '../../storage/create-storage.js';
import type { expireOutputs } from '../../workflows/expire-outputs.js';
import type { processAsset } from '../../workflows/process-asset.js';
import { startTestRedis } from '../helpers/redis.js';
import { startTestS3 } from '../helpers/s3.js';
import { createTimeSkippingEnv } from '../helpers/temporal-env.js';
import { SHARED_ASSETS } from '../helpers/upload.js';
import { bundleWorkflows, withWorkers } from '../helpers/workflow-workers.js';

/** Every file under a folder (empty folders hold nothing). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

interface Backend {
  storage: AssetStorage;
  /** Every object (or file) the storage holds. */
  inventory(): Promise<string[]>;
  stop(): Promise<void>;
}

const backends: Record<string, (dir: string) => Promise<Backend>> = {
  async local(dir) {
    const root = path.join(dir, 'data');
    return {
      storage: createStorage(loadConfig(storageSchema, { DATA_DIR: root })),
      inventory: () => filesUnder(root),
      stop: async () => {},
    };
  },
  async 's3 (versitygw)'() {
    const server = await startTestS3();
    const config = loadConfig(storageSchema, server.env);
    const client = s3ClientOf(config);
    return {
      storage: createStorage(config),
      async inventory() {
        const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket }));
        return (page.Contents ?? []).map((o) => o.Key!);
      },
      async stop() {
        client.destroy();
        await server.stop();
      },
    };
  },
};

/**
 * The real workflows and the real compute activities on each storage: a finished job leaves its upload,
 * checkpoints and outputs until its retention runs out (time-skipped), then nothing at all, in storage
 * or in the worker's scratch.
 */
describe.each(Object.keys(backends))('a finished job on %s storage, once expired', (name) => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundle;
  let backend: Backend;
  let redisServer: Awaited<ReturnType<typeof startTestRedis>>;
  let redis: Redis;
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'asset-farm-expiry-'));
    [env, bundle, backend, redisServer] = await Promise.all([
      createTimeSkippingEnv(),
      bundleWorkflows(),
      backends[name]!(dir),
      startTestRedis(),
    ]);
    redis = createRedis(redisServer.url, 'publisher');
  });
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([env?.teardown(), backend?.stop(), redisServer?.stop()]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('leaves no object and no file behind', async () => {
    const { storage } = backend;
    const scratch = await WorkerScratch.open(path.join(dir, 'scratch'), storage);
    const activities = createHpcActivities({ jobLog: new JobLog(redis, { ttlSeconds: 600 }), storage, scratch, progressMaxRate: 10 });
    const jobId = 'asset-alice-expiry';
    // As the API does: store the upload, then retain it for the job before starting it.
    const blob = await storage.putUpload(createReadStream(path.join(SHARED_ASSETS, 'TwoCubes.glb')), 1 << 30);
    const input: ProcessAssetInput = {
      owner: 'alice',
      assetName: 'TwoCubes.glb',
      files: [{ name: 'TwoCubes.glb', ...blob }],
      options: { preset: 'game-ready', retentionDays: 2 },
    };
    await storage.retainInputs(jobId, input.files);
    await storage.settleUpload(blob, 'kept');

    const { finished, expired } = await withWorkers(env, bundle, activities, async () => {
      const handle = await env.client.workflow.start<typeof processAsset>('processAsset', {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: jobId,
        args: [input],
      });
      // Polled, not awaited: awaiting the result would let the server skip time while stages run.
      await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', { timeoutMs: 120_000, what: 'the job to complete' });
      // The expiry waits out the retention on a timer.
      const expiry = env.client.workflow.getHandle<typeof expireOutputs>(`expire-outputs-${jobId}`);
      await waitFor(async () => (await expiry.fetchHistory()).events?.some((e) => e.timerStartedEventAttributes), {
        timeoutMs: 60_000,
        what: 'the retention timer to start',
      });
      const finished = { objects: await backend.inventory(), outputs: await storage.listOutputs(jobId) };
      // Awaiting the expiry lets the test server skip the two days.
      await expiry.result();
      return { finished, expired: await backend.inventory() };
    });

    // Before the retention ran out: the upload, the published outputs and their listing were all there.
    expect(finished.outputs.map((o) => o.name)).toContain('TwoCubes-lod0.glb');
    expect(finished.objects.some((key) => key.endsWith(blob.sha256))).toBe(true);
    expect(finished.objects.filter((key) => key.includes(`${jobId}/outputs/`)).length).toBe(finished.outputs.length);
    // The checkpoints stay for the retention too, so that an engineer can reset the job to a stage; then
    // everything goes.
    expect(finished.objects.filter((key) => key.includes(`${jobId}/checkpoints/`)).length).toBeGreaterThan(0);
    expect(expired).toEqual([]);
    expect(await storage.openUpload(blob)).toBeNull();
    expect(await filesUnder(path.join(dir, 'scratch'))).toEqual([]);
  });
});
