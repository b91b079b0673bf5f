import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeIO } from '@gltf-transform/core';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, CancelledFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type RunningDevServer } from '../scripts/lib/temporal-server.js';
import { freePort, waitFor } from '../scripts/lib/wait.js';
import { aliveStageThreads, busyStageThreads } from './stage-thread.js';
import { denseGrid } from './testing/dense-grid.js';
import { requestFor, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from './testing/pipeline-fixture.js';
import { workFiles } from './work-files.js';

const TASK_QUEUE = 'hpc-cancel-probe';

describe('cancelling a running stage through the real Temporal server', () => {
  let fx: PipelineFixture;
  let temporal: RunningDevServer;
  beforeAll(async () => {
    [fx, temporal] = await Promise.all([
      startPipelineFixture(),
      freePort().then((port) => startDevServer({ port, uiPort: null, dbFile: null })),
    ]);
  });
  afterAll(async () => {
    await temporal?.stop();
    await fx?.stop();
  });

  it('delivers the cancel through heartbeats, ends the thread, and only then reports the workflow cancelled', async () => {
    const jobId = 'asset-alice-temporal-cancel';
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')], { lodRatios: [0.5, 0.25, 0.1] });
    await new NodeIO().write(workFiles.optimized(await fx.storage.workDir(jobId)), denseGrid(700));

    const workerConnection = await NativeConnection.connect({ address: temporal.address });
    const clientConnection = await Connection.connect({ address: temporal.address });
    try {
      const worker = await Worker.create({
        connection: workerConnection,
        namespace: temporal.namespace,
        taskQueue: TASK_QUEUE,
        workflowsPath: fileURLToPath(new URL('./testing/lods-probe-workflow.ts', import.meta.url)),
        activities: fx.activities,
        // As worker/hpc.ts: heartbeats, and so the cancel, go through at least every second.
        maxHeartbeatThrottleInterval: '1 second',
      });
      const client = new Client({ connection: clientConnection, namespace: temporal.namespace });
      await worker.runUntil(async () => {
        const handle = await client.workflow.start('buildLodsProbe', {
          taskQueue: TASK_QUEUE,
          workflowId: jobId,
          args: [requestFor(input)],
        });
        const [thread] = await waitFor(() => busyStageThreads().length === 1 && busyStageThreads(), {
          timeoutMs: 60_000,
          what: 'the LOD thread to start',
        });
        // The server has a heartbeat from the running activity: it is alive while the thread computes.
        await waitFor(async () => (await handle.describe()).raw.pendingActivities?.[0]?.lastHeartbeatTime, {
          timeoutMs: 30_000,
          what: 'a heartbeat recorded by the server',
        });
        await handle.cancel();
        const err = await handle.result().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause;
        expect(cause instanceof CancelledFailure || (cause instanceof ActivityFailure && cause.cause instanceof CancelledFailure)).toBe(
          true,
        );
        expect(aliveStageThreads()).not.toContain(thread);
        await expect(fs.stat(workFiles.lodsDir(path.join(fx.dataDir, 'work', jobId)))).rejects.toMatchObject({ code: 'ENOENT' });
      });
    } finally {
      await clientConnection.close();
      await workerConnection.close();
    }
  });
});
