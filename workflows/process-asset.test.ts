import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HpcActivities, JobEventActivities } from '../activities/index.js';
import type { AssetStats, ProcessAssetInput } from '../common/jobs.js';
import type { JobEventFields } from '../common/progress.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { createTimeSkippingEnv } from '../test/helpers/temporal-env.js';

const workflowsPath = fileURLToPath(new URL('./index.ts', import.meta.url));
const input: ProcessAssetInput = {
  owner: 'alice',
  assetName: 'TwoCubes.glb',
  files: [{ name: 'TwoCubes.glb', sha256: 'f'.repeat(64), size: 2608 }],
  options: { preset: 'game-ready' },
};
const stats: AssetStats = {
  fileBytes: 2608,
  meshes: 2,
  primitives: 2,
  vertices: 48,
  triangles: 24,
  materials: 2,
  textures: [],
  extensionsUsed: [],
};

describe('processAsset workflow (time-skipping)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  /** Runs the workflow with both workers, as the HPC machine and the orchestrator would, with mocked activities. */
  async function run(inspectAsset: HpcActivities['inspectAsset']) {
    const events: JobEventFields[] = [];
    const light: JobEventActivities = {
      async publishJobEvent(fields) {
        events.push(fields);
        return events.length;
      },
    };
    const orchestrator = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowsPath,
      activities: light,
    });
    const hpc = await Worker.create({ connection: env.nativeConnection, taskQueue: HPC_TASK_QUEUE, activities: { inspectAsset } });
    const workflowId = `asset-alice-${Math.random().toString(16).slice(2)}`;
    const outcome = await orchestrator.runUntil(
      hpc.runUntil(
        env.client.workflow.execute('processAsset', { taskQueue: ORCHESTRATOR_TASK_QUEUE, workflowId, args: [input] }).then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
      ),
    );
    return { outcome, events, workflowId };
  }

  it('runs the compute step on the HPC queue and announces started then completed', async () => {
    const { outcome, events, workflowId } = await run(async () => stats);
    expect(outcome.ok && outcome.value).toMatchObject({ jobId: workflowId, input: stats });
    expect(events.map((e) => e.event)).toEqual(['started', 'stage-finished', 'completed']);
    expect(events.at(-1)?.result).toMatchObject({ meshes: 2, triangles: 24 });
  });

  it('retries a transient failure with backoff and then succeeds', async () => {
    let calls = 0;
    const { outcome } = await run(async () => {
      calls++;
      if (calls < 3) throw new Error('storage hiccup');
      return stats;
    });
    expect(outcome.ok).toBe(true);
    expect(calls).toBe(3);
  });

  it('fails at once on bad input, without retrying, and tells the artist why', async () => {
    let calls = 0;
    const { outcome, events } = await run(async () => {
      calls++;
      throw ApplicationFailure.nonRetryable('TwoCubes.glb could not be read as glTF: bad magic', 'InvalidAsset');
    });
    expect(calls).toBe(1);
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.error).toBeInstanceOf(WorkflowFailedError);
    const failed = events.at(-1);
    expect(failed?.event).toBe('failed');
    expect(failed?.error).toMatchObject({ type: 'InvalidAsset', message: expect.stringContaining('bad magic') });
  });
});
