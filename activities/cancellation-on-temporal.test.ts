import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeIO } from '@gltf-transform/core';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILURES } from '../common/failures.js';
import { createRedis } from '../common/redis.js';
import { startDevServer, type RunningDevServer } from '../scripts/lib/temporal-server.js';
import { waitFor } from '../scripts/lib/wait.js';
import { HeartbeatPacer } from './heartbeat-pacer.js';
import { createHpcActivities, type HpcActivities } from './hpc-activities.js';
import { aliveStageThreads, busyStageThreads } from './stage-thread.js';
import { StopHints } from './stop-hints.js';
import { denseGrid } from '../test/helpers/dense-grid.js';
import { requestFor, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';
import { workFiles } from './work-files.js';

const TASK_QUEUE = 'hpc-cancel-probe';

describe('cancelling a running stage through the real Temporal server', () => {
  let fx: PipelineFixture;
  let temporal: RunningDevServer;
  beforeAll(async () => {
    [fx, temporal] = await Promise.all([startPipelineFixture(), startDevServer({ port: 0, uiPort: null, dbFile: null })]);
  });
  afterAll(async () => {
    await temporal?.stop();
    await fx?.stop();
  });

  /** Runs `body` with a worker serving the LOD probe workflow with `activities`, as worker/hpc.ts runs them. */
  async function withProbeWorker(activities: HpcActivities, body: (client: Client) => Promise<void>): Promise<void> {
    const workerConnection = await NativeConnection.connect({ address: temporal.address });
    const clientConnection = await Connection.connect({ address: temporal.address });
    try {
      const worker = await Worker.create({
        connection: workerConnection,
        namespace: temporal.namespace,
        taskQueue: TASK_QUEUE,
        workflowsPath: fileURLToPath(new URL('../test/helpers/lods-probe-workflow.ts', import.meta.url)),
        activities,
        // As worker/hpc.ts: heartbeats, and so the cancel, go through at least every second.
        maxHeartbeatThrottleInterval: '1 second',
      });
      await worker.runUntil(body(new Client({ connection: clientConnection, namespace: temporal.namespace })));
    } finally {
      await clientConnection.close();
      await workerConnection.close();
    }
  }

  /** Starts the LOD probe on a dense grid and resolves once its thread computes and the server has a heartbeat. */
  async function startProbe(client: Client, jobId: string) {
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')], { lodRatios: [0.5, 0.25, 0.1] });
    await fx.putCheckpoint(jobId, 'optimized.glb', Buffer.from(await new NodeIO().writeBinary(denseGrid(700))));
    const handle = await client.workflow.start('buildLodsProbe', { taskQueue: TASK_QUEUE, workflowId: jobId, args: [requestFor(input)] });
    const [thread] = await waitFor(() => busyStageThreads().length === 1 && busyStageThreads(), {
      timeoutMs: 60_000,
      what: 'the LOD thread to start',
    });
    // The server has a heartbeat from the running activity: it is alive while the thread computes.
    await waitFor(async () => (await handle.describe()).raw.pendingActivities?.[0]?.lastHeartbeatTime, {
      timeoutMs: 30_000,
      what: 'a heartbeat recorded by the server',
    });
    return { handle, thread: thread! };
  }

  async function failureOf(handle: WorkflowHandle): Promise<unknown> {
    const err = await handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return (err as WorkflowFailedError).cause;
  }

  /** The workflow's failure is the activity's cancellation, not an error. */
  function expectCancelled(cause: unknown): void {
    expect(cause instanceof CancelledFailure || (cause instanceof ActivityFailure && cause.cause instanceof CancelledFailure)).toBe(true);
  }

  const lodsDirOf = (jobId: string) => workFiles.lodsDir(fx.checkpointDir(jobId));

  it('delivers the cancel through heartbeats, ends the thread, and only then reports the workflow cancelled', async () => {
    const jobId = 'asset-alice-temporal-cancel';
    await withProbeWorker(fx.activities, async (client) => {
      const { handle, thread } = await startProbe(client, jobId);
      await handle.cancel();
      expectCancelled(await failureOf(handle));
      expect(aliveStageThreads()).not.toContain(thread);
      await expect(fs.stat(lodsDirOf(jobId))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  describe('with stop messages from Redis', () => {
    let subscriber: Redis;
    let stopHints: StopHints;
    const hinted: string[] = [];
    /** Activities as worker/hpc.ts builds them, but pacing heartbeats 5 s apart: a cancel could not ride one soon. */
    const activitiesWith = (stopConfirmTimeoutMs: number) =>
      createHpcActivities({
        jobLog: fx.jobLog,
        storage: fx.storage,
        scratch: fx.scratch,
        progressMaxRate: 20,
        heartbeatPacer: new HeartbeatPacer({ maxPerSecond: 0.2, minIntervalMs: 1000 }),
        stopHints,
        stopConfirmTimeoutMs,
        onStopHint: (jobId, stage) => hinted.push(`${jobId}/${stage}`),
      });
    beforeAll(() => {
      subscriber = createRedis(fx.redisUrl, 'subscriber');
      stopHints = new StopHints(subscriber);
    });
    afterAll(() => subscriber?.disconnect());

    const cancelling = (jobId: string) =>
      fx.jobLog.publishEvent({ jobId, owner: 'alice', event: 'cancelling', stage: 'lods', message: 'Cancelling', ts: Date.now() });

    it('stops the thread on the job’s cancelling event alone, then reports cancelled once Temporal confirms', async () => {
      const jobId = 'asset-alice-stop-message';
      await withProbeWorker(activitiesWith(60_000), async (client) => {
        const { handle, thread } = await startProbe(client, jobId);
        expect(stopHints.watchedJobs).toBe(1);
        await cancelling(jobId);
        // No cancel in Temporal yet, and no heartbeat due for seconds: only the stop message can end the thread.
        await waitFor(() => !aliveStageThreads().includes(thread), { timeoutMs: 10_000, what: 'the thread to stop on the stop message' });
        expect(hinted).toEqual([`${jobId}/lods`]);
        expect((await handle.describe()).status.name).toBe('RUNNING');
        await handle.cancel();
        expectCancelled(await failureOf(handle));
        await expect(fs.stat(lodsDirOf(jobId))).rejects.toMatchObject({ code: 'ENOENT' });
        expect(stopHints.watchedJobs).toBe(0);
      });
    });

    it('runs the stage again when Temporal never confirms the cancel a stop message announced', async () => {
      const jobId = 'asset-alice-stray-stop';
      await withProbeWorker(activitiesWith(1500), async (client) => {
        const { handle, thread } = await startProbe(client, jobId);
        await cancelling(jobId);
        await waitFor(() => !aliveStageThreads().includes(thread), { timeoutMs: 10_000, what: 'the thread to stop on the stop message' });
        // The probe allows one attempt, so the retryable failure surfaces instead of a second run.
        const cause = await failureOf(handle);
        expect(cause).toBeInstanceOf(ActivityFailure);
        const failure = (cause as ActivityFailure).cause;
        expect(failure).toBeInstanceOf(ApplicationFailure);
        expect(failure).toMatchObject({ type: FAILURES.STOP_NOT_CONFIRMED.code, nonRetryable: false });
      });
    });
  });
});
