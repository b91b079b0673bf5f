import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineReport } from '../../common/pipeline.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { startTestS3 } from '../helpers/s3.js';
import { TestSocket } from '../helpers/socket-client.js';
import { texturesCheckpointed } from '../helpers/stage-checkpoint.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

/** Every file under a folder (empty folders hold nothing). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/**
 * Three hosts on one machine (issue 20): the API (with the orchestrator) on its own data folder, HPC
 * worker A and HPC worker B each on its own data and scratch folders; they share only Temporal, Redis and
 * an S3 server (versitygw). Worker A is killed (-9) during `textures`; worker B, which never saw A's disk,
 * resumes the stage from the checkpoints in the bucket without redoing the textures A finished. Then both
 * workers' folders are deleted, and the job still downloads in full through the API.
 */
describe('three hosts sharing only Temporal, Redis and S3', () => {
  let stack: TestStack;
  let s3: Awaited<ReturnType<typeof startTestS3>>;
  let root: string;
  const host = (name: 'api' | 'worker-a' | 'worker-b') => path.join(root, name);
  const workerOn = (name: 'worker-a' | 'worker-b') => ({
    id: `worker:hpc:${name}`,
    env: { DATA_DIR: host(name), SCRATCH_DIR: path.join(host(name), 'scratch') },
  });
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'asset-farm-hosts-'));
    s3 = await startTestS3();
    stack = await startStack({ components: ['worker:orchestrator', 'api'], env: { ...s3.env, DATA_DIR: host('api') } });
  });
  afterAll(async () => {
    await stack?.stop();
    await s3?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('finishes on worker B from A’s checkpoints in the bucket, and downloads with no worker folder left', async () => {
    await stack.startComponent('worker:hpc', workerOn('worker-a'));
    const token = stack.tokenFor('kim');
    const auth = { authorization: `Bearer ${token}` };
    const socket = TestSocket.connect(stack.wsUrl, token);
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed');

    // archive keeps textures at full size, so each of the helmet's five 2048² textures takes a while.
    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], {
      options: JSON.stringify({ preset: 'archive', textureFormat: 'webp' }),
    });
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };

    // Killed only once the server holds a heartbeat whose checkpoint lists a finished texture: a checkpoint
    // is heartbeaten only after its files are in the bucket.
    const checkpointed = await texturesCheckpointed(stack, jobId, { timeoutMs: 240_000 });
    const workerA = stack.processes.get('worker:hpc:worker-a')!;
    process.kill(-workerA.child.pid!, 'SIGKILL');
    await workerA.exited;
    // The killed stage's scratch is still on A's disk: nothing cleaned it.
    expect((await filesUnder(path.join(host('worker-a'), 'scratch'))).length).toBeGreaterThan(0);

    await stack.startComponent('worker:hpc', workerOn('worker-b'));
    await socket.waitFor((m) => m.jobId === jobId && m.type === 'event' && m.event === 'completed', 300_000, 'the completed event');
    const job = await waitFor(
      async () => {
        const body = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: auth })).json()) as {
          status: string;
          result: PipelineReport | null;
        };
        return body.status === 'COMPLETED' && body;
      },
      { timeoutMs: 30_000, what: 'the job to be COMPLETED' },
    );
    // B resumed from A's checkpoints (at least the ones the killed heartbeat listed) and computed the rest.
    const textures = job.result!.textures;
    expect(textures).toHaveLength(5);
    const resumed = textures.filter((t) => t.resumed).length;
    console.log(JSON.stringify({ threeHosts: { checkpointedAtKill: checkpointed, resumedOnB: resumed, textures: textures.length } }));
    expect(resumed).toBeGreaterThanOrEqual(checkpointed);
    expect(resumed).toBeLessThan(textures.length);
    expect(
      socket.messages.some((m) => m.jobId === jobId && m.type === 'progress' && m.stage === 'textures' && (m.attempt as number) >= 2),
    ).toBe(true);
    // B emptied its scratch after each stage.
    expect(await filesUnder(path.join(host('worker-b'), 'scratch'))).toEqual([]);

    // A worker started again on A's disk removes what the killed one left.
    await stack.startComponent('worker:hpc', workerOn('worker-a'));
    expect(await filesUnder(path.join(host('worker-a'), 'scratch'))).toEqual([]);

    // Neither worker's folder is needed any more: the API serves everything from the bucket.
    for (const name of ['worker-a', 'worker-b'] as const) {
      await stack.processes.get(`worker:hpc:${name}`)!.stop();
      await fs.rm(host(name), { recursive: true, force: true });
    }
    const listing = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs`, { headers: auth })).json()) as {
      outputs: { name: string; size: number; sha256: string }[];
    };
    expect(listing.outputs.map((o) => o.name)).toEqual(['DamagedHelmet-lod0.glb', 'report.json']);
    for (const output of listing.outputs) {
      const file = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs/${output.name}`, { headers: auth });
      expect(file.status).toBe(200);
      const bytes = Buffer.from(await file.arrayBuffer());
      expect(bytes.length).toBe(output.size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(output.sha256);
    }
    const zip = Buffer.from(await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs.zip`, { headers: auth })).arrayBuffer());
    expect(zip.subarray(0, 2).toString()).toBe('PK');
    expect(zip.includes('DamagedHelmet-lod0.glb')).toBe(true);
    // The API's own folder holds no job data: uploads, checkpoints and outputs are all in the bucket.
    expect((await filesUnder(host('api'))).filter((f) => !f.startsWith('cache'))).toEqual([]);
    socket.close();
  });
});
