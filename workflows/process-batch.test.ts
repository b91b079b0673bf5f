import { heartbeat, sleep as activitySleep } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../scripts/lib/wait.js';
import type { ProcessAssetInput } from '../common/jobs.js';
import type { StageRequest } from '../common/pipeline.js';
import { ASSET_OWNER } from '../common/search-attributes.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { mockPipeline, TWO_CUBES_STATS } from '../test/helpers/pipeline-activities.js';
import { createTimeSkippingEnv } from '../test/helpers/temporal-env.js';
import { bundleWorkflows, saveHistoryIfRequested, withWorkers } from '../test/helpers/workflow-workers.js';
import type { processBatch } from './process-batch.js';
import { batchProgressQuery } from './queries.js';

const asset = (assetName: string): ProcessAssetInput => ({
  owner: 'alice',
  assetName,
  files: [{ name: assetName, sha256: 'f'.repeat(64), size: 2608 }],
  options: { preset: 'mobile' },
});

describe('processBatch workflow (time-skipping, mocked compute)', () => {
  let env: TestWorkflowEnvironment;
  let workflowBundle: WorkflowBundle;
  beforeAll(async () => {
    [env, workflowBundle] = await Promise.all([createTimeSkippingEnv(), bundleWorkflows()]);
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('runs an asset job per asset, at most `concurrency` at once, and one invalid asset does not fail the others', async () => {
    // Inspection waits until the test has seen the batch at its concurrency limit.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const inspected: string[] = [];
    const mock = mockPipeline({
      async inspectAsset({ input }: StageRequest) {
        inspected.push(input.assetName);
        await released;
        return TWO_CUBES_STATS;
      },
      async validateAsset({ input }: StageRequest) {
        if (input.assetName === 'Broken.glb') {
          throw ApplicationFailure.nonRetryable('Broken.glb is not valid glTF: 2 errors', 'INVALID_ASSET', {
            code: 'BUFFER_VIEW_TOO_LONG',
            message: 'bufferView goes past the end of its buffer',
            severity: 'error',
          });
        }
        return { errors: 0, warnings: 0, messages: [] };
      },
    });

    const { outcomes, during, after, events, batchId } = await withWorkers(env, workflowBundle, mock.activities, async (events) => {
      const handle = await env.client.workflow.start<typeof processBatch>('processBatch', {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: `batch-alice-${Math.random().toString(16).slice(2)}`,
        args: [{ owner: 'alice', assets: [asset('TwoCubes.glb'), asset('Broken.glb'), asset('DamagedHelmet.glb')], concurrency: 2 }],
      });
      await waitFor(() => inspected.length >= 2, { timeoutMs: 20_000, what: 'two asset jobs to start' });
      const during = await handle.query(batchProgressQuery);
      const startedBeforeRelease = inspected.length;
      release();
      const outcomes = await handle.result();
      expect(startedBeforeRelease).toBe(2);
      await saveHistoryIfRequested('process-batch-one-invalid', handle);
      return { outcomes, during, after: await handle.query(batchProgressQuery), events, batchId: handle.workflowId };
    });

    expect(during).toEqual({ total: 3, done: 0, failed: 0, cancelled: 0, running: 2, waiting: 1 });
    expect(after).toEqual({ total: 3, done: 2, failed: 1, cancelled: 0, running: 0, waiting: 0 });
    expect(outcomes.map((o) => [o.assetName, o.status])).toEqual([
      ['TwoCubes.glb', 'completed'],
      ['Broken.glb', 'failed'],
      ['DamagedHelmet.glb', 'completed'],
    ]);
    expect(outcomes[1]?.error).toMatchObject({ type: 'INVALID_ASSET', details: [{ code: 'BUFFER_VIEW_TOO_LONG' }] });

    // Each asset is an ordinary job of the owner: its own id, listed under AssetOwner, its own events.
    for (const outcome of outcomes) {
      expect(outcome.jobId).toMatch(/^asset-alice-/);
      const description = await env.client.workflow.getHandle(outcome.jobId).describe();
      expect(description.status.name).toBe(outcome.status === 'completed' ? 'COMPLETED' : 'FAILED');
      expect(description.typedSearchAttributes.get(ASSET_OWNER)).toBe('alice');
      expect(events.filter((e) => e.jobId === outcome.jobId).at(-1)?.event).toBe(outcome.status);
    }
    const batchEvents = events.filter((e) => e.jobId === batchId);
    // One `stage-finished` per asset job that ended, with the counts so far: the batch's aggregate progress.
    expect(batchEvents.map((e) => e.event)).toEqual(['started', 'stage-finished', 'stage-finished', 'stage-finished', 'completed']);
    const counts = batchEvents.slice(1, 4).map((e) => e.result as { done: number; failed: number; total: number });
    expect(counts.map((c) => c.done + c.failed)).toEqual([1, 2, 3]);
    expect(batchEvents[3]?.result).toMatchObject({ total: 3, done: 2, failed: 1, cancelled: 0 });
    expect(batchEvents.at(-1)?.result).toEqual({ total: 3, done: 2, failed: 1, cancelled: 0 });
  });

  it('cancelling the batch cancels its running jobs, which clean up, and starts no more', async () => {
    const inspecting: string[] = [];
    const mock = mockPipeline({
      async inspectAsset({ input }: StageRequest) {
        inspecting.push(input.assetName);
        // Runs until cancelled; heartbeats are how the cancel reaches it.
        for (;;) {
          heartbeat();
          await activitySleep(100);
        }
      },
    });
    const { error, progress, events, handle } = await withWorkers(env, workflowBundle, mock.activities, async (events) => {
      const handle = await env.client.workflow.start<typeof processBatch>('processBatch', {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: `batch-alice-${Math.random().toString(16).slice(2)}`,
        args: [{ owner: 'alice', assets: [asset('A.glb'), asset('B.glb'), asset('C.glb')], concurrency: 2 }],
      });
      await waitFor(() => inspecting.length >= 2, { timeoutMs: 20_000, what: 'two asset jobs to start' });
      await handle.cancel();
      const error = await handle.result().then(
        () => null,
        (err: unknown) => err,
      );
      return { error, progress: await handle.query(batchProgressQuery), events, handle };
    });

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(progress).toEqual({ total: 3, done: 0, failed: 0, cancelled: 2, running: 0, waiting: 1 });
    expect(inspecting.sort()).toEqual(['A.glb', 'B.glb']);
    const jobIds = [...new Set(mock.calls.filter((c) => c.activity === 'inspectAsset').map((c) => c.workflowId))];
    expect(jobIds).toHaveLength(2);
    for (const jobId of jobIds) {
      expect(mock.namesFor(jobId)).toEqual(['inspectAsset', 'cleanupJob']);
      expect(
        events
          .filter((e) => e.jobId === jobId)
          .map((e) => e.event)
          .slice(-2),
      ).toEqual(['cancelling', 'cancelled']);
    }
    expect(events.filter((e) => e.jobId === handle.workflowId).map((e) => e.event)).toEqual([
      'started',
      'stage-finished',
      'stage-finished',
      'cancelled',
    ]);
  });
});
