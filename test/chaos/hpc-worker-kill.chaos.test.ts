import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineReport } from '../../common/pipeline.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { TestSocket } from '../helpers/socket-client.js';
import { texturesCheckpointed } from '../helpers/stage-checkpoint.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

/**
 * The HPC machine dies (kill -9) in the middle of the textures stage. Temporal notices the missing
 * heartbeats, a new worker takes the stage over, and it resumes from the heartbeat checkpoint: the
 * textures already finished are not redone, and the artist's stream shows the retry with no gap.
 */
describe('HPC worker killed mid-stage', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('completes the job on a new worker without redoing finished textures', async () => {
    const token = stack.tokenFor('kim');
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

    const midway = await socket.waitFor(
      (m) =>
        m.jobId === jobId &&
        m.type === 'progress' &&
        m.stage === 'textures' &&
        (m.done as number) >= 1 &&
        (m.done as number) < (m.total as number),
      120_000,
      'textures progress past the first texture',
    );
    // Kill only once the server holds a heartbeat whose checkpoint lists a finished texture.
    const checkpointed = await texturesCheckpointed(stack, jobId);
    const hpc = stack.processes.get('worker:hpc')!;
    process.kill(-hpc.child.pid!, 'SIGKILL');
    await hpc.exited;
    const doneBeforeKill = Math.max(
      ...socket.messages
        .filter((m) => m.jobId === jobId && m.type === 'progress' && m.stage === 'textures' && m.attempt === 1)
        .map((m) => m.done as number),
    );
    expect(doneBeforeKill).toBeGreaterThanOrEqual(midway.done as number);

    await stack.startComponent('worker:hpc');
    const completed = await socket.waitFor(
      (m) => m.jobId === jobId && m.type === 'event' && m.event === 'completed',
      180_000,
      'the completed event',
    );
    expect(completed.result).toMatchObject({ lods: 0 });

    const jobMessages = socket.messages.filter((m) => m.jobId === jobId);
    // The artist saw the retry: textures progress from a second attempt.
    const retried = jobMessages.filter((m) => m.type === 'progress' && m.stage === 'textures' && (m.attempt as number) >= 2);
    expect(retried.length).toBeGreaterThan(0);
    // No gap and no duplicate in what the socket delivered.
    // Queue frames (the job's place in the HPC line) are current state and carry no seq.
    const seqs = jobMessages.filter((m) => m.type !== 'queue').map((m) => m.seq as number);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));

    const job = await waitFor(
      async () => {
        const body = (await (
          await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } })
        ).json()) as {
          status: string;
          result: PipelineReport | null;
        };
        return body.status === 'COMPLETED' && body;
      },
      { timeoutMs: 30_000, what: 'the job to be COMPLETED' },
    );
    const textures = job.result!.textures;
    // The textures finished before the kill came from the checkpoint (at least those the artist saw done;
    // one may have finished in the instant before the kill), the rest were computed anew.
    const resumed = textures.filter((t) => t.resumed).length;
    expect(resumed).toBeGreaterThanOrEqual(Math.max(checkpointed, doneBeforeKill));
    expect(resumed).toBeLessThan(textures.length);
    expect(textures.length).toBe(5);
    socket.close();
  });
});
