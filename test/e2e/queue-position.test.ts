import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobEventActivities, jobInputActivities } from '../../activities/index.js';
import { HpcQueueSweep } from '../../api/hpc-queue-sweep.js';
import { JobService } from '../../api/job-service.js';
import { createApiMetrics } from '../../api/api-metrics.js';
import { HpcQueueBook, type HpcWaitEnded } from '../../common/hpc-queue.js';
import { JobLog } from '../../common/job-log.js';
import { fairShareKey, type JobPriority } from '../../common/job-priority.js';
import type { ProcessAssetInput } from '../../common/jobs.js';
import { createRedis } from '../../common/redis.js';
import { QueueMessage } from '../../common/socket-protocol.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { startDevServer, type RunningDevServer } from '../../scripts/lib/temporal-server.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { HpcQueuePlaces } from '../../worker/hpc-queue-places.js';
import { mockPipeline, type PipelineCall } from '../helpers/pipeline-activities.js';
import { startTestRedis } from '../helpers/redis.js';
import { bundleWorkflows, terminateJobs } from '../helpers/workflow-workers.js';

function input(owner: string, n: number, hpcQueue: string): ProcessAssetInput {
  return {
    owner,
    assetName: `prop-${n}.glb`,
    files: [{ name: `prop-${n}.glb`, sha256: 'c'.repeat(64), size: 2608 }],
    options: { preset: 'game-ready', hpcQueue },
  };
}

/** What one turnover of the slot showed: the line as every waiting job had been told it, and who started next. */
interface Turn {
  /** Job ids in the order their latest `queue` frames placed them (ahead 0, 1, 2…). */
  told: string[];
  started: string;
}

interface Line {
  submit(owner: string, n: number, level?: JobPriority): Promise<string>;
  /** Waits until every unfinished job but the running one waits in the line and in Temporal; resolves with the line told. */
  quiet(): Promise<string[]>;
  /** quiet(), then lets the running stage finish: what the line said, and who started next. */
  turn(): Promise<Turn>;
  /** The API's /metrics text, its queue gauges read from the same Redis. */
  metrics(): Promise<string>;
  /** Each stage that waited in the line, as the HPC worker reported its wait when it started it. */
  waits: HpcWaitEnded[];
  /** Terminates a job as an engineer would from the Temporal UI: nothing of the job runs to say so. */
  terminate(jobId: string): Promise<void>;
  /** One round of the API's sweep of the lines (api/hpc-queue-sweep.ts). */
  sweep(): Promise<string[]>;
  /** Every `queue` frame each job received, in order. */
  frames: Map<string, QueueMessage[]>;
  started: PipelineCall[];
}

/**
 * One HPC slot, held by the test as in fair-share.test.ts, with the real job-event activities and the
 * real HPC worker interceptor keeping the line in a real Redis, and a subscriber reading the `queue`
 * frames each job's channel carries, as the API relays them to the artist.
 */
async function withLine<T>(server: RunningDevServer, redisUrl: string, queue: string, drive: (line: Line) => Promise<T>): Promise<T> {
  const log = pino({ level: 'silent' });
  const redis = createRedis(redisUrl, 'reader');
  const subscriber = new Redis(redisUrl);
  // Places told at most every 100 ms, not every second: the turns below wait for them ten times a test.
  const book = new HpcQueueBook(redis, { tellEveryMs: 100 });
  const frames = new Map<string, QueueMessage[]>();
  subscriber.on('pmessage', (_pattern: string, _channel: string, raw: string) => {
    if (!raw.startsWith('{"type":"queue"')) return;
    const frame = QueueMessage.parse(JSON.parse(raw));
    // Only this line's: the other tests' lines share the Redis.
    if (frame.queue !== queue) return;
    frames.set(frame.jobId, [...(frames.get(frame.jobId) ?? []), frame]);
  });
  await subscriber.psubscribe('progress:*');

  const started: PipelineCall[] = [];
  const holding: (() => void)[] = [];
  let closing = false;
  const submitted: string[] = [];
  const finished = new Set<string>();
  const pipeline = mockPipeline({}, (call) => {
    if (closing) return Promise.resolve();
    started.push(call);
    if (call.activity === 'packageOutputs') finished.add(call.workflowId);
    return new Promise<void>((release) => holding.push(release));
  });
  const waits: HpcWaitEnded[] = [];
  const places = new HpcQueuePlaces({ book, queue, slots: 1, log, onWaitEnded: (ended) => waits.push(ended) });
  const apiMetrics = createApiMetrics({
    stats: () => ({ sockets: 0, channels: 0, patterns: 0 }),
    queueShares: async () => [{ queue, shares: await book.shares(queue) }],
  });
  await places.register();
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection, namespace: server.namespace });
  const jobs = new JobService(client);
  const sweep = new HpcQueueSweep({ book, jobs, log, intervalMs: 3_600_000 });
  const orchestrator = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: ORCHESTRATOR_TASK_QUEUE,
    workflowBundle: await bundleWorkflows(),
    activities: { ...createJobEventActivities({ jobLog: new JobLog(redis, { ttlSeconds: 3600 }), hpcQueue: book }), ...jobInputActivities },
  });
  const hpc = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: queue,
    activities: pipeline.activities,
    interceptors: { activity: [places.interceptor()] },
    maxConcurrentActivityTaskExecutions: 1,
  });

  /** Each waiting job's latest frame says where it is; sorted by that, the line as the artists see it. */
  const toldLine = () =>
    [...frames.entries()]
      .map(([jobId, list]) => ({ jobId, last: list.at(-1)! }))
      .filter(({ last }) => last.waiting)
      .sort((a, b) => a.last.ahead - b.last.ahead)
      .map(({ jobId }) => jobId);

  const line: Line = {
    frames,
    started,
    async submit(owner, n, level = 'normal') {
      const jobId = await jobs.start(input(owner, n, queue), { level, shareKey: fairShareKey(owner), weights: new Map() });
      submitted.push(jobId);
      // In the line (or on the slot) before the next one is submitted: two stages announced within the
      // same milliseconds may reach the server in either order (common/hpc-queue.ts).
      await waitFor(() => frames.get(jobId)?.at(-1)?.waiting === true || started.some((c) => c.workflowId === jobId), {
        timeoutMs: 30_000,
        what: `${jobId} in the line`,
      });
      return jobId;
    },
    waits,
    metrics: () => apiMetrics.registry.metrics(),
    terminate: async (jobId) => {
      await client.workflow.getHandle(jobId).terminate('stopped from the UI');
      finished.add(jobId);
    },
    sweep: () => sweep.round(),
    async turn() {
      const told = await line.quiet();
      const count = started.length;
      holding.shift()!();
      await waitFor(() => started.length > count, { timeoutMs: 30_000, what: 'the next stage on the slot' });
      return { told, started: started.at(-1)!.workflowId };
    },
    async quiet() {
      await waitFor(() => started.length > 0, { timeoutMs: 30_000, what: 'the first stage on the slot' });
      const running = started.at(-1)!.workflowId;
      const unfinished = submitted.filter((id) => !finished.has(id) || id === running);
      // Quiet: every other unfinished job's next stage is scheduled and told its place, 0..n-1 with no gap.
      const expected = unfinished.filter((id) => id !== running);
      const told = await waitFor(
        () => {
          const order = toldLine();
          const places = order.map((id) => frames.get(id)!.at(-1)!.ahead);
          return order.length === expected.length && places.every((p, i) => p === i) ? order : false;
        },
        { timeoutMs: 30_000, what: 'every waiting job to be told its place' },
      ).catch((err: unknown) => {
        const order = toldLine().map((id) => `${id.slice(6, 16)}@${frames.get(id)!.at(-1)!.ahead}`);
        throw new Error(`${String(err)}; running ${running.slice(6, 16)}, told ${order.join(' ')}, expected ${expected.length}`);
      });
      // The line hears of a stage just before its workflow schedules it: wait until the server has it too.
      await waitFor(
        async () => {
          const pending = await Promise.all(
            told.map(async (id) => ((await client.workflow.getHandle(id).describe()).raw.pendingActivities ?? []).length),
          );
          return pending.every((n) => n > 0);
        },
        { timeoutMs: 30_000, what: 'every waiting stage scheduled in Temporal' },
      );
      return told;
    },
  };
  const stop = async () => {
    closing = true;
    for (const release of holding.splice(0)) release();
    await terminateJobs(client, submitted);
  };
  try {
    return await orchestrator.runUntil(hpc.runUntil(() => drive(line).finally(stop)));
  } finally {
    sweep.stop();
    await places.close();
    await clientConnection.close();
    await connection.close();
    subscriber.disconnect();
    redis.disconnect();
  }
}

describe('queue position: what artists are told matches the order Temporal starts their jobs', () => {
  let server: RunningDevServer;
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  beforeAll(async () => {
    [server, redis] = await Promise.all([startDevServer({ port: 0, uiPort: null, dbFile: null }), startTestRedis()]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), redis?.stop()]);
  });

  it("counts a job's place down to 0 as the jobs ahead start, and it starts next", async () => {
    await withLine(server, redis.url, 'hpc-countdown', async (line) => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await line.submit(`artist-${i}`, i));
      const last = ids.at(-1)!;
      const placesOfLast: number[] = [];
      for (let turn = 0; turn < 10; turn++) {
        const { told, started } = await line.turn();
        // The one told it is next is the one that starts.
        expect(started).toBe(told[0]);
        if (told.includes(last)) placesOfLast.push(told.indexOf(last));
        if (started === last) break;
      }
      // The first job took the free slot at once; the five others waited, the last behind four.
      expect(placesOfLast).toEqual([4, 3, 2, 1, 0]);
      const framesOfLast = line.frames.get(last)!;
      expect(framesOfLast.at(-1)).toMatchObject({ waiting: false, ahead: 0 });
    });
  });

  it('takes a job terminated from the Temporal UI out of the line, so the jobs behind it move up', async () => {
    await withLine(server, redis.url, 'hpc-terminated', async (line) => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await line.submit(`artist-${i}`, i));
      expect(await line.quiet()).toEqual(ids.slice(1));
      await line.terminate(ids[1]!);
      // Nothing of the terminated job runs to say it ended: the sweep finds it, once, and of this line only it
      // (it also takes out the earlier tests' jobs, terminated as they ended).
      const mine = (removed: string[]) => removed.filter((id) => ids.includes(id));
      expect(mine(await line.sweep())).toEqual([ids[1]]);
      expect(mine(await line.sweep())).toEqual([]);
      await waitFor(() => line.frames.get(ids[3]!)?.at(-1)?.ahead === 1, { timeoutMs: 10_000, what: 'the last job to move up' });
      expect(line.frames.get(ids[2]!)?.at(-1)).toMatchObject({ waiting: true, ahead: 0 });
      expect(line.frames.get(ids[1]!)?.at(-1)).toMatchObject({ waiting: false });
      // Its own place is withdrawn, and the next job to start is the one told it is next.
      expect((await line.turn()).started).toBe(ids[2]);
    });
  });

  it('stays true with fair share and priorities: one artist floods, another submits one, a third an urgent one', async () => {
    await withLine(server, redis.url, 'hpc-shared', async (line) => {
      for (let i = 0; i < 8; i++) await line.submit('artist-a', i);
      await waitFor(() => line.started.length > 0, { timeoutMs: 30_000, what: 'the first stage' });
      await line.submit('artist-b', 0);
      const turns: Turn[] = [];
      for (let turn = 0; turn < 12; turn++) {
        if (turn === 4) await line.submit('artist-c', 0, 'urgent');
        turns.push(await line.turn());
      }
      for (const [i, { told, started }] of turns.entries()) expect(started, `turn ${i}: told ${told.join(', ')}`).toBe(told[0]);
      // Engineers see the same line in /metrics: stages waiting per fairness key and priority.
      const told = await line.quiet();
      const text = await line.metrics();
      const depth = (key: string, priority: string) =>
        Number(
          new RegExp(`^asset_farm_hpc_queue_depth\\{[^}]*priority="${priority}",share_key="${key}"[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1] ??
            0,
        );
      const waitingOf = (owner: string) => told.filter((id) => id.startsWith(`asset-${owner}-`)).length;
      expect(depth('artist-a', 'normal')).toBe(waitingOf('artist-a'));
      expect(depth('artist-a', 'normal')).toBeGreaterThan(0);
      expect(text).toMatch(/^asset_farm_hpc_queue_oldest_wait_seconds\{[^}]*share_key="artist-a"[^}]*\} \d/m);
      // And the HPC worker measured every wait it ended, by key: one per stage started from the line.
      expect(new Set(line.waits.map((w) => w.fairnessKey))).toEqual(new Set(['artist-a', 'artist-b', 'artist-c']));
      expect(line.waits.find((w) => w.fairnessKey === 'artist-c')?.priorityKey).toBe(1);
      // Fair share and priority really reordered the line (this is not first come, first served).
      const bJob = turns.find((t) => t.told.some((id) => id.startsWith('asset-artist-b-')))!;
      expect(bJob.told.findIndex((id) => id.startsWith('asset-artist-b-'))).toBeLessThanOrEqual(1);
      expect(turns.some((t) => t.told[0]?.startsWith('asset-artist-c-'))).toBe(true);
    });
  });
});
