import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadIdOf } from '../../common/uploads.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { TestSocket } from '../helpers/socket-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { TusProbe } from '../helpers/tus.js';
import { SHARED_ASSETS } from '../helpers/upload.js';

const TWO_CUBES = readFileSync(path.join(SHARED_ASSETS, 'TwoCubes.glb'));
const BROKEN = Buffer.from('this is not a glTF file');

interface JobRow {
  jobId: string;
  assetName: string;
  status: string;
  kind: string;
  batchId: string | null;
  retryOf: string | null;
}

/**
 * Batches as one thing, through the API of the real stack (Temporal dev server, Redis, both workers):
 * POST /api/batches starts processBatch with an asset job per asset, which streams its aggregate progress
 * on the batch's own channel, lists with its owner's jobs, cancels as a whole and retries only what failed.
 */
describe('batches of assets through the API', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ env: { API_SUBMIT_BURST: '50' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const auth = (user: string) => ({ authorization: `Bearer ${stack.tokenFor(user)}` });

  /** One finished resumable upload of bytes (tus), as the page and the CLI make them. */
  async function upload(user: string, name: string, bytes: Buffer): Promise<string> {
    const probe = new TusProbe(stack.apiUrl, stack.tokenFor(user));
    const created = await probe.create(bytes.length, { filename: name, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(created.status).toBe(201);
    expect((await probe.patch(probe.url(created), 0, bytes)).status).toBe(204);
    return uploadIdOf(probe.url(created))!;
  }

  async function startBatch(user: string, assets: { uploadId: string; name: string }[], concurrency = 3): Promise<Response> {
    return fetch(`${stack.apiUrl}/api/batches`, {
      method: 'POST',
      headers: { ...auth(user), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'props', assets: assets.map((file) => ({ files: [file] })), concurrency }),
    });
  }

  async function jobs(user: string): Promise<JobRow[]> {
    const res = await fetch(`${stack.apiUrl}/api/jobs?limit=100`, { headers: auth(user) });
    return ((await res.json()) as { jobs: JobRow[] }).jobs;
  }

  /** The socket the page uses, following one job by id. */
  function follow(user: string, jobId: string, lastSeq?: number): TestSocket {
    const socket = TestSocket.connect(`${stack.apiUrl.replace(/^http/, 'ws')}/ws`, stack.tokenFor(user));
    void socket.opened.then(() => socket.send({ type: 'subscribe', jobId, ...(lastSeq !== undefined ? { lastSeq } : {}) }));
    return socket;
  }

  const assetEvents = (socket: TestSocket, batchId: string) =>
    socket.messages.filter((m) => m.jobId === batchId && m.type === 'event' && m.event === 'stage-finished') as {
      seq: number;
      result: { jobId: string; status: string; done: number; failed: number; cancelled: number; total: number };
    }[];

  it('runs 10 assets as one batch that streams its aggregate progress across an API restart, then retries only the failed one', async () => {
    const user = 'bea';
    const good = await upload(user, 'crate.glb', TWO_CUBES);
    const bad = await upload(user, 'broken.glb', BROKEN);
    const assets = [
      ...Array.from({ length: 9 }, (_, i) => ({ uploadId: good, name: `crate-${i}.glb` })),
      { uploadId: bad, name: 'broken.glb' },
    ];
    const res = await startBatch(user, assets);
    expect(res.status).toBe(202);
    const { jobId: batchId } = (await res.json()) as { jobId: string };
    // In the owner's id space: every ownership check covers it.
    expect(batchId.startsWith(`asset-${user}-`)).toBe(true);

    let socket = follow(user, batchId);
    // Partway through, the API restarts; the socket comes back with its lastSeq and misses nothing.
    await socket.waitFor((m) => m.type === 'event' && m.event === 'stage-finished', 120_000, 'the first asset to end');
    const before = assetEvents(socket, batchId);
    socket.close();
    await stack.processes.get('api')!.stop();
    await stack.startComponent('api');
    const lastSeq = Math.max(
      ...socket.messages.filter((m) => m.jobId === batchId && typeof m.seq === 'number').map((m) => m.seq as number),
    );
    socket = follow(user, batchId, lastSeq);
    await socket.waitFor((m) => m.type === 'event' && m.event === 'completed' && m.jobId === batchId, 240_000, 'the batch to complete');
    const events = [...before, ...assetEvents(socket, batchId)];
    socket.close();

    // One event per asset, counts only going up to all ten: 9 done, 1 failed.
    expect(events).toHaveLength(10);
    expect(events.map((e) => e.result.done + e.result.failed + e.result.cancelled)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(events.at(-1)!.result).toMatchObject({ total: 10, done: 9, failed: 1, cancelled: 0 });
    expect(new Set(events.map((e) => e.seq)).size).toBe(10);

    // The batch lists with the owner's jobs, and so does each of its assets, marked as the batch's.
    const listed = await waitFor(
      async () => {
        const rows = await jobs(user);
        // Visibility follows the workflows a moment behind their events.
        const done = rows.find((r) => r.jobId === batchId)?.status === 'COMPLETED';
        return done && rows.filter((r) => r.batchId === batchId && r.status !== 'RUNNING').length === 10 ? rows : false;
      },
      { timeoutMs: 30_000, what: 'the batch and its 10 asset jobs in the list' },
    );
    expect(listed.find((r) => r.jobId === batchId)).toMatchObject({ kind: 'batch', status: 'COMPLETED', assetName: 'props' });
    const children = listed.filter((r) => r.batchId === batchId);
    expect(children.every((c) => c.jobId.startsWith(`asset-${user}-`))).toBe(true);
    const failed = children.filter((c) => c.status === 'FAILED');
    expect(failed.map((c) => c.assetName)).toEqual(['broken.glb']);

    // Another artist cannot see or retry it.
    expect((await fetch(`${stack.apiUrl}/api/jobs/${batchId}`, { headers: auth('eve') })).status).toBe(404);
    expect((await fetch(`${stack.apiUrl}/api/jobs/${batchId}/retry`, { method: 'POST', headers: auth('eve') })).status).toBe(404);

    // Retrying the batch retries its one failed asset, as a new batch recorded as the retry.
    const retried = await fetch(`${stack.apiUrl}/api/jobs/${batchId}/retry`, { method: 'POST', headers: auth(user) });
    expect(retried.status).toBe(202);
    const retry = (await retried.json()) as { jobId: string; retryOf: string; assets: string[] };
    expect(retry).toMatchObject({ retryOf: batchId, assets: ['broken.glb'] });
    const retryChildren = await waitFor(
      async () => {
        const rows = await jobs(user);
        const mine = rows.filter((r) => r.batchId === retry.jobId);
        const batch = rows.find((r) => r.jobId === retry.jobId);
        return batch?.status === 'COMPLETED' && mine.length > 0 ? { batch, mine } : false;
      },
      { timeoutMs: 120_000, what: 'the retried batch to finish' },
    );
    expect(retryChildren.batch).toMatchObject({ kind: 'batch', retryOf: batchId });
    expect(retryChildren.mine.map((c) => c.assetName)).toEqual(['broken.glb']);
  }, 400_000);

  it('cancels as a whole: the running asset jobs are cancelled and the rest never start', async () => {
    const user = 'cid';
    const good = await upload(user, 'crate.glb', TWO_CUBES);
    // The HPC worker is down, so the batch's first assets wait on the queue when the cancel comes.
    await stack.processes.get('worker:hpc')!.stop();
    let batchId: string;
    try {
      const res = await startBatch(
        user,
        Array.from({ length: 10 }, (_, i) => ({ uploadId: good, name: `crate-${i}.glb` })),
        2,
      );
      batchId = ((await res.json()) as { jobId: string }).jobId;
      await waitFor(async () => (await jobs(user)).filter((r) => r.batchId === batchId).length === 2, {
        timeoutMs: 30_000,
        what: 'the first two asset jobs of the batch',
      });
      const cancel = await fetch(`${stack.apiUrl}/api/jobs/${batchId}/cancel`, { method: 'POST', headers: auth(user) });
      expect(cancel.status).toBe(202);
    } finally {
      await stack.startComponent('worker:hpc');
    }
    const rows = await waitFor(
      async () => {
        const all = await jobs(user);
        const batch = all.find((r) => r.jobId === batchId);
        const mine = all.filter((r) => r.batchId === batchId);
        return batch?.status === 'CANCELLED' && mine.every((c) => c.status !== 'RUNNING') ? { batch, mine } : false;
      },
      { timeoutMs: 120_000, what: 'the batch and its asset jobs cancelled' },
    );
    // Only the two that had started exist, and neither completed.
    expect(rows.mine).toHaveLength(2);
    expect(rows.mine.map((c) => c.status)).toEqual(['CANCELLED', 'CANCELLED']);
  }, 300_000);
});
