import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_STAGES, planStages } from '../../common/stages.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { TestSocket } from '../helpers/socket-client.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { sampleValue } from '../helpers/prometheus.js';

/** The stages the API plans for this upload (common/stages.ts). */
const PLAN = planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] });
const STAGES = PLAN.map((s) => s.name);

describe('walking skeleton: upload → workflow → HPC activity → Redis → socket', () => {
  let stack: TestStack;
  let hpcMetricsPort: number;
  let orchestratorMetricsPort: number;
  let apiMetricsPort: number;
  beforeAll(async () => {
    [hpcMetricsPort, orchestratorMetricsPort, apiMetricsPort] = await Promise.all([freePort(), freePort(), freePort()]);
    stack = await startStack({
      componentEnv: {
        'worker:hpc': { METRICS_PORT: String(hpcMetricsPort) },
        'worker:orchestrator': { METRICS_PORT: String(orchestratorMetricsPort) },
        api: { API_METRICS_PORT: String(apiMetricsPort) },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('streams a TwoCubes.glb job to its owner and records it in Temporal', async () => {
    const token = stack.tokenFor('alice');
    const socket = TestSocket.connect(stack.wsUrl, token);
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed' && m.all === true);

    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    expect(jobId).toMatch(/^asset-alice-/);

    const done = await socket.waitFor(
      (m) => m.jobId === jobId && m.type === 'event' && m.event === 'completed',
      60_000,
      'the completed event',
    );
    expect(done.result).toMatchObject({ meshes: 2, vertices: 48, triangles: 24, textures: 0, lods: 2 });

    const jobMessages = socket.messages.filter((m) => m.jobId === jobId);
    const progress = jobMessages.filter((m) => m.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    // Every stage reported progress, in pipeline order, and the last report is the finished job.
    const stagesSeen = [...new Set(progress.map((m) => m.stage))];
    expect(stagesSeen).toEqual([...STAGES]);
    expect(progress.at(-1)).toMatchObject({
      stage: STAGES.at(-1),
      stageIndex: STAGES.length - 1,
      stageCount: STAGES.length,
      owner: 'alice',
      percent: 100,
    });
    // Queue frames (the job's place in the HPC line) are current state, not stream messages: they carry no seq.
    const seqs = jobMessages.filter((m) => m.type !== 'queue').map((m) => m.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    socket.close();

    // The REST view agrees once the workflow has closed (the completed event goes out just before), and
    // the report carries the file's real counts.
    const job = await waitFor(
      async () => {
        const body = (await (
          await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } })
        ).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- response JSON, checked field by field below
        return body.status === 'COMPLETED' && body;
      },
      { timeoutMs: 30_000, what: 'the job to be COMPLETED' },
    );
    expect(job.result.input).toMatchObject({ meshes: 2, primitives: 2, vertices: 48, triangles: 24, materials: 2, fileBytes: 2608 });

    // Another user learns nothing about it.
    const other = await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${stack.tokenFor('bob')}` } });
    expect(other.status).toBe(404);

    // The workflow's history on the server shows the compute step ran on the HPC queue.
    const connection = await Connection.connect({ address: stack.temporalAddress });
    try {
      const client = new Client({ connection, namespace: stack.namespace });
      const history = await client.workflow.getHandle(jobId).fetchHistory();
      const scheduled = (history.events ?? []).flatMap((e) =>
        e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : [],
      );
      const computeSteps = PLAN.map((s) => s.activity);
      expect(scheduled.filter((a) => a.taskQueue?.name === 'hpc').map((a) => a.activityType?.name)).toEqual(computeSteps);
      expect((history.events ?? []).some((e) => e.workflowExecutionCompletedEventAttributes)).toBe(true);
    } finally {
      await connection.close();
    }
  });

  it('refuses sockets without a valid token, with a close code that says why', async () => {
    const missing = TestSocket.connect(stack.wsUrl, null);
    expect(await missing.closed).toBe(4401);
    const forged = TestSocket.connect(stack.wsUrl, stack.tokenFor('alice').slice(0, -4) + 'AAAA');
    expect(await forged.closed).toBe(4403);
    const expired = TestSocket.connect(stack.wsUrl, stack.tokenFor('alice', { expiresIn: -10 }));
    expect(await expired.closed).toBe(4419);
  });

  it('exposes the HPC worker metrics, its own and the Temporal SDK ones, on one endpoint', async () => {
    // The first test ran a job through this worker.
    const body = await (await fetch(`http://127.0.0.1:${hpcMetricsPort}/metrics`)).text();
    expect(
      sampleValue(body, 'asset_farm_activity_duration_seconds_count', {
        activity: 'inspectAsset',
        outcome: 'completed',
        component: 'worker-hpc',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_activity_queue_wait_seconds_count', { activity: 'inspectAsset' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_progress_mirror_drops_total')).toBe(0);
    expect(sampleValue(body, 'asset_farm_progress_publish_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'temporal_worker_task_slots_available', { task_queue: 'hpc', worker_type: 'ActivityWorker' })).toBeGreaterThan(
      0,
    );
  });

  it('exposes the API metrics (jobs, sockets, relay latency) and the orchestrator counts finished jobs', async () => {
    // The first test ran a game-ready job with one socket following it; this socket is still open when scraped.
    const socket = TestSocket.connect(stack.wsUrl, stack.tokenFor('carol'));
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed');
    // Not on the app's port: it is unauthenticated, so it has a loopback port of its own.
    expect((await fetch(`${stack.apiUrl}/metrics`)).status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${apiMetricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    socket.close();
    expect(sampleValue(body, 'asset_farm_jobs_started_total', { preset: 'game-ready', component: 'api' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_api_sockets')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_api_redis_subscriptions', { kind: 'pattern' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_progress_socket_latency_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_api_messages_relayed_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(body, 'asset_farm_api_progress_coalesced_total')).toBe(0);
    expect(sampleValue(body, 'asset_farm_process_resident_memory_bytes')).toBeGreaterThan(0);

    const orchestrator = await (await fetch(`http://127.0.0.1:${orchestratorMetricsPort}/metrics`)).text();
    expect(sampleValue(orchestrator, 'asset_farm_jobs_finished_total', { outcome: 'completed', preset: 'game-ready' })).toBe(1);
  });
});
