import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobInputActivities, type JobEventActivities } from '../../activities/index.js';
import { fairShareKey, type JobPriority } from '../../common/job-priority.js';
import type { ProcessAssetInput } from '../../common/jobs.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { JobService } from '../../api/job-service.js';
import { startDevServer, type RunningDevServer } from '../../scripts/lib/temporal-server.js';
import { waitFor } from '../../scripts/lib/wait.js';
import path from 'node:path';
import { ASSET_PRIORITY, ASSET_RETRY_OF } from '../../common/search-attributes.js';
import { mockPipeline, type PipelineCall } from '../helpers/pipeline-activities.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { bundleWorkflows, terminateJobs } from '../helpers/workflow-workers.js';

function input(owner: string, n: number): ProcessAssetInput {
  return {
    owner,
    assetName: `prop-${n}.glb`,
    files: [{ name: `prop-${n}.glb`, sha256: 'c'.repeat(64), size: 2608 }],
    options: { preset: 'game-ready' },
  };
}

/**
 * One HPC slot, held by the test: every compute stage waits until the test lets the running one finish,
 * so the order in which Temporal hands stages to the worker is read exactly, one turnover at a time.
 */
async function withOneSlot<T>(server: RunningDevServer, drive: (farm: Farm) => Promise<T>): Promise<T> {
  const started: PipelineCall[] = [];
  const waiting: (() => void)[] = [];
  let closing = false;
  const submitted: string[] = [];
  const pipeline = mockPipeline({}, (call) => {
    if (closing) return Promise.resolve();
    started.push(call);
    return new Promise<void>((release) => waiting.push(release));
  });
  const light: JobEventActivities = {
    publishJobEvent: async () => 0,
    publishJobEvents: async (batch) => batch.map(() => 0),
  };
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection, namespace: server.namespace });
  const jobs = new JobService(client);
  const workflowBundle = await bundleWorkflows();
  const orchestrator = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: ORCHESTRATOR_TASK_QUEUE,
    workflowBundle,
    activities: { ...light, ...jobInputActivities },
  });
  const hpc = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: HPC_TASK_QUEUE,
    activities: pipeline.activities,
    maxConcurrentActivityTaskExecutions: 1,
  });
  const farm: Farm = {
    started,
    async submit(owner, n, level = 'normal', team) {
      const jobId = await jobs.start(input(owner, n), { level, shareKey: fairShareKey(owner, team), weights: new Map() });
      submitted.push(jobId);
      return jobId;
    },
    async next() {
      const count = started.length;
      waiting.shift()!();
      await waitFor(() => started.length > count, { timeoutMs: 30_000, what: 'the next stage on the HPC slot' });
      return started.at(-1)!;
    },
    async firstStarted() {
      await waitFor(() => started.length > 0, { timeoutMs: 30_000, what: 'the first stage on the HPC slot' });
    },
    async scheduled(jobIds) {
      await waitFor(
        async () => {
          const pending = await Promise.all(
            jobIds.map(async (id) => ((await client.workflow.getHandle(id).describe()).raw.pendingActivities ?? []).length),
          );
          return pending.every((n) => n > 0);
        },
        { timeoutMs: 60_000, what: `${jobIds.length} jobs with a stage waiting for the HPC slot` },
      );
    },
    async stop() {
      // Let every held stage go and end the jobs, so the workers can shut down.
      closing = true;
      for (const release of waiting.splice(0)) release();
      await terminateJobs(client, submitted);
    },
  };
  try {
    return await orchestrator.runUntil(hpc.runUntil(() => drive(farm).finally(() => farm.stop())));
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

interface Farm {
  /** Compute stages in the order the one HPC slot received them. */
  started: PipelineCall[];
  submit(owner: string, n: number, level?: JobPriority, team?: string): Promise<string>;
  /** Lets the running stage finish and resolves with the stage Temporal hands the slot next. */
  next(): Promise<PipelineCall>;
  firstStarted(): Promise<void>;
  /** Resolves when each of these jobs has a compute stage scheduled (in Temporal's backlog or running). */
  scheduled(jobIds: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Artist A's jobs are all queued, each with its first stage scheduled on the HPC queue, before anyone else submits. */
async function flood(farm: Farm, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await farm.submit('artist-a', i));
  await farm.firstStarted();
  await farm.scheduled(ids);
  return ids;
}

describe('a farm many artists share: fair share and priorities on the real dev server', () => {
  let fair: RunningDevServer;
  let fifo: RunningDevServer;
  beforeAll(async () => {
    [fair, fifo] = await Promise.all([
      startDevServer({ port: 0, uiPort: null, dbFile: null }),
      // The same server without fairness: what the test guards against.
      startDevServer({ port: 0, uiPort: null, dbFile: null, dynamicConfig: { 'matching.enableFairness': false } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([fair?.stop(), fifo?.stop()]);
  });

  it("gives artist B's single job the next slot although artist A queued 30 first", async () => {
    await withOneSlot(fair, async (farm) => {
      await flood(farm, 30);
      const bJob = await farm.submit('artist-b', 0);
      await farm.scheduled([bJob]);
      let turns = 0;
      for (; turns < 60; turns++) if ((await farm.next()).workflowId === bJob) break;
      // The matcher may already have handed the slot's next task over when B's arrived: B waits at most
      // that one stage, where first come, first served makes it wait for all 29 (next test).
      expect(turns).toBeLessThanOrEqual(1);
      expect(farm.started.at(-1)!.workflowId).toBe(bJob);
    });
  });

  it('without fairness the same single job waits behind every one of the 30 (first come, first served)', async () => {
    await withOneSlot(fifo, async (farm) => {
      await flood(farm, 30);
      const bJob = await farm.submit('artist-b', 0);
      await farm.scheduled([bJob]);
      const before: string[] = [];
      for (let turn = 0; turn < 60; turn++) {
        const next = await farm.next();
        if (next.workflowId === bJob) break;
        before.push(next.workflowId);
      }
      // Every one of A's 29 waiting first stages went before B's.
      expect(new Set(before).size).toBeGreaterThanOrEqual(29);
    });
  });

  it('an urgent job overtakes the queued normal ones, and a background job waits for them', async () => {
    await withOneSlot(fair, async (farm) => {
      await flood(farm, 10);
      const background = await farm.submit('artist-c', 0, 'background');
      const urgent = await farm.submit('artist-a', 100, 'urgent');
      await farm.scheduled([background, urgent]);
      expect((await farm.next()).workflowId).toBe(urgent);
      for (let turn = 0; turn < 120 && !farm.started.some((c) => c.workflowId === background); turn++) await farm.next();
      const backgroundAt = farm.started.findIndex((c) => c.workflowId === background);
      expect(backgroundAt).toBeGreaterThan(0);
      // Every stage of every normal job, down to its package stage, ran before the background job's first.
      const packagedBefore = new Set(
        farm.started
          .slice(0, backgroundAt)
          .filter((c) => c.activity === 'packageOutputs')
          .map((c) => c.workflowId),
      );
      expect(packagedBefore.size).toBe(11);
    });
  });
});

describe('priorities and audited retries through the API', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ env: { API_URGENT_USERS: 'lead', API_SUBMIT_BURST: '50' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  const submit = (token: string, priority?: string) =>
    uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')], {
      options: JSON.stringify(priority ? { priority } : {}),
    });
  async function describeJob(jobId: string) {
    const connection = await Connection.connect({ address: stack.temporalAddress });
    try {
      return await new Client({ connection, namespace: stack.namespace }).workflow.getHandle(jobId).describe();
    } finally {
      await connection.close();
    }
  }

  it('lets only the configured users and the urgent role jump the queue, and records each job’s priority', async () => {
    const refused = await submit(stack.tokenFor('alice'), 'urgent');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('PRIORITY_NOT_ALLOWED');

    const byConfig = await submit(stack.tokenFor('lead'), 'urgent');
    const byRole = await submit(stack.tokenFor('carol', {}, { roles: ['asset-farm:urgent'], team: 'fx' }), 'urgent');
    const background = await submit(stack.tokenFor('alice'), 'background');
    const plain = await submit(stack.tokenFor('alice'));
    for (const res of [byConfig, byRole, background, plain]) expect(res.status).toBe(202);
    const [lead, carol, bg, normal] = await Promise.all(
      [byConfig, byRole, background, plain].map(async (res) => describeJob(((await res.json()) as { jobId: string }).jobId)),
    );
    expect(lead!.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 1, fairnessKey: 'lead' });
    // A token's team shares one fairness key.
    expect(carol!.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 1, fairnessKey: 'team:fx' });
    expect(bg!.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 5, fairnessKey: 'alice' });
    expect(normal!.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 3, fairnessKey: 'alice' });
    expect(bg!.typedSearchAttributes.get(ASSET_PRIORITY)).toBe('background');
  });

  it('records what a retry retries, who asked and when, findable by AssetRetryOf', async () => {
    const token = stack.tokenFor('dana');
    const res = await submit(token, 'background');
    const { jobId } = (await res.json()) as { jobId: string };
    await fetch(`${stack.apiUrl}/api/jobs/${jobId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const retried = await waitFor(
      async () => {
        const r = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/retry`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        return r.status === 202 ? ((await r.json()) as { jobId: string; retryOf: string }) : false;
      },
      { timeoutMs: 60_000, what: 'the cancelled job to be retryable' },
    );
    expect(retried.retryOf).toBe(jobId);
    const description = await describeJob(retried.jobId);
    expect(description.typedSearchAttributes.get(ASSET_RETRY_OF)).toBe(jobId);
    const memo = description.memo as { retry?: { retryOf: string; by: string; at: string } };
    expect(memo.retry).toMatchObject({ retryOf: jobId, by: 'dana' });
    expect(Date.parse(memo.retry!.at)).not.toBeNaN();
    // The job list (the page's job history) says who asked and when, read from the memo.
    const listed = await waitFor(
      async () => {
        const r = await fetch(`${stack.apiUrl}/api/jobs`, { headers: { authorization: `Bearer ${token}` } });
        const page = (await r.json()) as { jobs: { jobId: string; retryOf: string | null; retry: unknown }[] };
        return page.jobs.find((j) => j.jobId === retried.jobId) ?? false;
      },
      { timeoutMs: 15_000, what: 'the retry in the job list' },
    );
    expect(listed).toMatchObject({ retryOf: jobId, retry: memo.retry });
    // The retry keeps the original's priority.
    expect(description.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 5 });
    // The Temporal UI's query finds it.
    const connection = await Connection.connect({ address: stack.temporalAddress });
    try {
      const client = new Client({ connection, namespace: stack.namespace });
      await expect
        .poll(
          async () => {
            const ids: string[] = [];
            for await (const w of client.workflow.list({ query: `AssetRetryOf = "${jobId}"` })) ids.push(w.workflowId);
            return ids;
          },
          { timeout: 15_000 },
        )
        .toEqual([retried.jobId]);
    } finally {
      await connection.close();
    }
  });
});
