import { randomUUID } from 'node:crypto';
import { Queue, Job } from 'bullmq';
import type { WorkflowHandle } from '@temporalio/client';
import { Redis } from 'ioredis';
import { ASSET_OWNER } from '../../common/search-attributes.js';
import type { BenchContext } from '../lib/bench-context.js';
import { startApi } from '../lib/bench-stack.js';
import { startCpuMeter } from '../lib/proc-stats.js';
import { commandCalls, commandDelta } from '../lib/redis-stats.js';
import { row, type BenchResult, type ResultRow } from '../lib/report.js';
import { spawnNode, type BenchChild } from '../lib/rpc.js';
import { fmt, summarizeLatency, type LatencySummary } from '../lib/stats.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { BENCH_ORCHESTRATOR_QUEUE, type SyntheticJobInput, type SyntheticJobResult } from './bench-queues.js';

/** Messages per job per second, as the issue specifies. */
export const HZ = 10;
const BULLMQ_QUEUE = 'bench-progress';
export const FLOOR_PREFIX = 'floor:';

/** One system under one load, one repeat. */
export interface PhaseResult {
  system: 'floor' | 'project' | 'bullmq';
  jobs: number;
  latency: LatencySummary;
  /** Messages that reached a client socket / messages the producer handed to Redis (after the start signal). */
  delivered: number;
  expected: number;
  /** Report calls the reporter coalesced away (never sent): not losses, by design. */
  coalesced: number;
  /** Updates the producer could not hand to Redis (reporter drops, failed publishes). */
  producerDrops: number;
  /** Sockets whose job's final message (done = total) arrived. */
  finals: number;
  seqGaps: number;
  /** Core-seconds per second of each process over the measured window. */
  cpu: Record<string, number>;
  /** CPU seconds each process used over the measured window. */
  cpuSeconds: Record<string, number>;
  redisCommands: number;
  redisTopCommands: Record<string, number>;
}

/** Golden-ratio phases spread jobs' ticks evenly over the period without randomness. */
export const phaseOf = (i: number) => (i * 0.6180339887) % 1;

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export interface ClientResults {
  sockets: number;
  delivered: number;
  expected: number;
  finals: number;
  seqGaps: number;
  unparsable: number;
  latency: LatencySummary;
}

/** The shared processes of the progress benchmarks, started once for all loads and repeats. */
export interface ProgressRig {
  api: Awaited<ReturnType<typeof startApi>>;
  worker: BenchChild;
  floorRelay: BenchChild;
  floorUrl: string;
  bullmqRelay: BenchChild;
  bullmqUrl: string;
  publisher: BenchChild;
  bullmqWorker: BenchChild;
  clients: BenchChild;
  queue: Queue;
  redis: Redis;
  stop(): Promise<void>;
}

export async function startProgressRig(ctx: BenchContext, maxJobs: number): Promise<ProgressRig> {
  const { infra } = ctx;
  const env = infra.env;
  const started: BenchChild[] = [];
  const track = (c: BenchChild) => (started.push(c), c);
  try {
    const [api, worker] = await Promise.all([startApi(infra), ctx.benchWorker()]);
    started.push(api.process);
    const floorRelay = track(
      spawnNode('floor-relay', 'bench/progress/bare-relay.ts', {
        env,
        args: ['--source', 'redis', '--redis-url', infra.redis.url, '--prefix', FLOOR_PREFIX],
      }),
    );
    const bullmqRelay = track(
      spawnNode('bullmq-relay', 'bench/progress/bare-relay.ts', {
        env,
        args: ['--source', 'bullmq', '--redis-url', infra.redis.url, '--queue', BULLMQ_QUEUE],
      }),
    );
    const publisher = track(spawnNode('floor-publisher', 'bench/progress/bare-publisher.ts', { env }));
    const bullmqWorker = track(spawnNode('bullmq-worker', 'bench/progress/bullmq-worker.ts', { env }));
    const clients = track(spawnNode('socket-clients', 'bench/progress/latency-clients.ts', { env }));
    const [floorAddr, bullmqAddr] = await Promise.all([
      floorRelay.call<{ url: string }>('address', undefined, 60_000),
      bullmqRelay.call<{ url: string }>('address', undefined, 60_000),
      bullmqWorker.call('start', { redisUrl: infra.redis.url, queue: BULLMQ_QUEUE, concurrency: maxJobs }, 60_000),
    ]);
    const queue = new Queue(BULLMQ_QUEUE, { connection: { url: infra.redis.url } });
    const redis = new Redis(infra.redis.url);
    return {
      api,
      worker,
      floorRelay,
      floorUrl: floorAddr.url,
      bullmqRelay,
      bullmqUrl: bullmqAddr.url,
      publisher,
      bullmqWorker,
      clients,
      queue,
      redis,
      async stop() {
        await queue.close();
        redis.disconnect();
        await Promise.all(started.map((c) => c.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((c) => c.stop()));
    throw err;
  }
}

async function measureWindow<T>(
  rig: ProgressRig,
  pids: Record<string, number>,
  body: () => Promise<T>,
): Promise<{ value: T } & PhaseWindow> {
  const before = await commandCalls(rig.redis);
  const stopCpu = startCpuMeter(pids);
  const value = await body();
  const used = Object.entries(stopCpu());
  const cpu = Object.fromEntries(used.map(([name, c]) => [name, Math.round(c.coreShare * 1000) / 1000]));
  const cpuSeconds = Object.fromEntries(used.map(([name, c]) => [name, Math.round(c.cpuSeconds * 1000) / 1000]));
  const delta = commandDelta(before, await commandCalls(rig.redis));
  return { value, cpu, cpuSeconds, redisCommands: delta.total, redisTopCommands: delta.top };
}

/** What a measured window cost: CPU per process and the Redis commands it sent. */
interface PhaseWindow {
  cpu: Record<string, number>;
  cpuSeconds: Record<string, number>;
  redisCommands: number;
  redisTopCommands: Record<string, number>;
}

/** One phase's figures: what the clients received, and the window's CPU and Redis counts. */
function phaseResult(
  system: PhaseResult['system'],
  jobs: number,
  got: ClientResults,
  window: PhaseWindow,
  producer: { coalesced: number; drops: number },
): PhaseResult {
  return {
    system,
    jobs,
    latency: got.latency,
    delivered: got.delivered,
    expected: got.expected,
    coalesced: producer.coalesced,
    producerDrops: producer.drops,
    finals: got.finals,
    seqGaps: got.seqGaps,
    cpu: window.cpu,
    cpuSeconds: window.cpuSeconds,
    redisCommands: window.redisCommands,
    redisTopCommands: window.redisTopCommands,
  };
}

export function connectOrThrow(result: { connected: number; failed: number; firstError: string }, what: string): void {
  if (result.failed > 0) throw new Error(`${result.failed} ${what} sockets failed to subscribe: ${result.firstError}`);
}

async function runFloor(ctx: BenchContext, rig: ProgressRig, jobs: number, updates: number): Promise<PhaseResult> {
  const ids = Array.from({ length: jobs }, (_, i) => ({ jobId: `floor-${randomUUID()}`, phase: phaseOf(i) }));
  connectOrThrow(
    await rig.clients.call('connect', { mode: 'relay', url: rig.floorUrl, subscriptions: ids.map(({ jobId }) => ({ jobId })) }),
    'floor',
  );
  const pids = { relay: rig.floorRelay.pid, producer: rig.publisher.pid, redis: ctx.infra.redis.process.child.pid! };
  const window = await measureWindow(rig, pids, async () => {
    const produced = await rig.publisher.call<{ jobId: string; calls: number; published: number; dropped: number }[]>('run', {
      redisUrl: ctx.infra.redis.url,
      jobs: ids,
      updates,
      hz: HZ,
      prefix: FLOOR_PREFIX,
    });
    const expected = Object.fromEntries(produced.map((p) => [p.jobId, p.published]));
    await rig.clients.call('waitDelivered', { expected, timeoutMs: 5000 });
    return { produced, expected };
  });
  const got = await rig.clients.call<ClientResults>('results', { expected: window.value.expected });
  await rig.clients.call('close');
  return phaseResult('floor', jobs, got, window, { coalesced: 0, drops: window.value.produced.reduce((s, p) => s + p.dropped, 0) });
}

/** Synthetic jobs started as real workflows, waiting for their start signal. */
export interface SyntheticJobs {
  specs: { owner: string; jobId: string; phase: number }[];
  handles: WorkflowHandle[];
  goKey: string;
  /** A token per owner, as the identity provider would sign it. */
  tokenOf(owner: string): string;
  /** Gives the start signal and resolves to every job's result, in `specs` order, once all have reported. */
  go(): Promise<SyntheticJobResult[]>;
  /** Lets the jobs complete (after the measured window) and waits until they have. */
  release(): Promise<void>;
}

/**
 * Starts `jobs` benchmark workflows (owners bench-owner-0..owners-1) and resolves once every synthetic
 * activity is running, which is when it has published its stage start: then all report together at the signal.
 */
export async function startSyntheticJobs(
  ctx: BenchContext,
  redis: Redis,
  options: { jobs: number; updates: number; owners: number },
): Promise<SyntheticJobs> {
  const { infra } = ctx;
  const goKey = `bench:go:${randomUUID()}`;
  const specs = Array.from({ length: options.jobs }, (_, i) => {
    const owner = `bench-owner-${i % options.owners}`;
    return { owner, jobId: `asset-${owner}-${randomUUID()}`, phase: phaseOf(i) };
  });
  const handles = await mapLimit(specs, 50, (s) => {
    const input: SyntheticJobInput = { owner: s.owner, updates: options.updates, hz: HZ, goKey, phase: s.phase };
    return infra.client.workflow.start('benchProgressJob', {
      taskQueue: BENCH_ORCHESTRATOR_QUEUE,
      workflowId: s.jobId,
      args: [input],
      typedSearchAttributes: [{ key: ASSET_OWNER, value: s.owner }],
    });
  });
  let lastLog = Date.now();
  let ready = 0;
  // A job that fails while the others start would otherwise be noticed only at the deadline. These
  // result long polls end at the start signal: 1,000 of them would cost Temporal CPU in the window.
  const watching = new AbortController();
  const firstFailure = new Promise<never>((_, reject) => {
    for (const h of handles)
      infra.client.connection
        .withAbortSignal(watching.signal, () => h.result())
        .catch((err: unknown) => {
          if (watching.signal.aborted) return;
          const cause = err instanceof Error ? (err.cause instanceof Error ? (err.cause.cause ?? err.cause) : err) : err;
          reject(new Error(`synthetic job ${h.workflowId} failed: ${cause instanceof Error ? cause.message : String(cause)}`));
        });
  });
  firstFailure.catch(() => {});
  try {
    await Promise.race([
      firstFailure,
      waitFor(
        async () => {
          ready = Number(await redis.get(`${goKey}:ready`));
          if (Date.now() - lastLog > 10_000) {
            lastLog = Date.now();
            ctx.log(`  ${ready}/${options.jobs} synthetic activities running`);
          }
          return ready >= options.jobs;
        },
        { timeoutMs: 300_000, what: `${options.jobs} synthetic activities to start`, intervalMs: 100 },
      ),
    ]);
  } catch (err) {
    // Let the started jobs run out (10 s) instead of holding worker slots that later phases need.
    await redis.set(goKey, '1', 'EX', 3600);
    const statuses = await Promise.all(
      handles.slice(0, 2000).map((h) =>
        h.describe().then(
          (d) => d.status.name,
          () => 'unknown',
        ),
      ),
    );
    const counts = statuses.reduce<Record<string, number>>((acc, st) => ((acc[st] = (acc[st] ?? 0) + 1), acc), {});
    throw new Error(`${(err as Error).message} (${ready} running; workflows: ${JSON.stringify(counts)})`);
  } finally {
    watching.abort();
  }
  const tokens = new Map<string, string>();
  // Results come through Redis and the jobs complete only once released (SyntheticJobInput.goKey), so
  // no result long poll runs during the window.
  return {
    specs,
    handles,
    goKey,
    tokenOf: (owner) => tokens.get(owner) ?? tokens.set(owner, infra.tokenFor(owner)).get(owner)!,
    async go() {
      await redis.set(goKey, '1', 'EX', 3600);
      return readSyntheticResults(
        redis,
        goKey,
        specs.map((s) => s.jobId),
      );
    },
    async release() {
      await redis.set(`${goKey}:release`, '1', 'EX', 3600);
      // A job that failed is reported as such here.
      await Promise.all(handles.map((h) => h.result()));
    },
  };
}

/** Each synthetic job's result, in `jobIds` order, once all are stored in `<goKey>:results`. */
async function readSyntheticResults(redis: Redis, goKey: string, jobIds: string[]): Promise<SyntheticJobResult[]> {
  const key = `${goKey}:results`;
  await waitFor(async () => (await redis.hlen(key)) >= jobIds.length, {
    timeoutMs: 120_000,
    what: `${jobIds.length} synthetic jobs' results`,
    intervalMs: 50,
  });
  const stored = await redis.hgetall(key);
  await redis.expire(key, 3600);
  return jobIds.map((id) => JSON.parse(stored[id]!) as SyntheticJobResult);
}

async function runProject(ctx: BenchContext, rig: ProgressRig, jobs: number, updates: number): Promise<PhaseResult> {
  const { infra } = ctx;
  // Several jobs per owner, as artists have: 10 owners at most, so ownership checks are exercised.
  const synthetic = await startSyntheticJobs(ctx, rig.redis, { jobs, updates, owners: 10 });
  const { specs, tokenOf } = synthetic;
  connectOrThrow(
    await rig.clients.call('connect', {
      mode: 'api',
      url: rig.api.wsUrl,
      subscriptions: specs.map((s) => ({ jobId: s.jobId, token: tokenOf(s.owner) })),
    }),
    'API',
  );
  const pids = {
    api: rig.api.process.pid,
    worker: rig.worker.pid,
    redis: infra.redis.process.child.pid!,
    temporal: infra.temporal.process?.child.pid ?? 0,
  };
  // The window ends once the clients have every message; the jobs complete after it (SyntheticJobInput.goKey).
  const window = await measureWindow(rig, pids, async () => {
    const produced = await synthetic.go();
    const expected = Object.fromEntries(specs.map((s, i) => [s.jobId, produced[i]!.published]));
    await rig.clients.call('waitDelivered', { expected, timeoutMs: 5000 });
    return { produced, expected };
  });
  await synthetic.release();
  const got = await rig.clients.call<ClientResults & { tap?: LatencySummary }>('results', { expected: window.value.expected });
  const roundTrips = Float64Array.from(window.value.produced.flatMap((p) => p.publishRoundTripsMs ?? []));
  if (roundTrips.length) {
    const rt = summarizeLatency(roundTrips);
    ctx.log(`  report call → Redis answered, in the worker: p50 ${rt.p50.toFixed(3)} ms, p99 ${rt.p99.toFixed(3)} ms`);
  }
  if (got.tap) ctx.log(`  tap (report call → leaving Redis): p50 ${fmt(got.tap.p50, 'ms')}, p99 ${fmt(got.tap.p99, 'ms')}`);
  await rig.clients.call('close');
  const produced = window.value.produced;
  return phaseResult('project', jobs, got, window, {
    coalesced: produced.reduce((s, p) => s + Math.max(0, p.calls - p.published - p.dropped), 0),
    drops: produced.reduce((s, p) => s + p.dropped, 0),
  });
}

async function runBullmq(ctx: BenchContext, rig: ProgressRig, jobs: number, updates: number): Promise<PhaseResult> {
  const goKey = `bench:go:${randomUUID()}`;
  const ids = Array.from({ length: jobs }, () => `bmq-${randomUUID()}`);
  await rig.queue.addBulk(
    ids.map((jobId, i) => ({
      name: 'progress',
      data: { updates, hz: HZ, phase: phaseOf(i), goKey },
      opts: { jobId, removeOnComplete: false },
    })),
  );
  connectOrThrow(
    await rig.clients.call('connect', { mode: 'relay', url: rig.bullmqUrl, subscriptions: ids.map((jobId) => ({ jobId })) }),
    'BullMQ',
  );
  const deadline = Date.now() + 120_000;
  while ((await rig.queue.getActiveCount()) < jobs) {
    if (Date.now() > deadline) throw new Error('BullMQ worker did not take every job');
    await new Promise((r) => setTimeout(r, 100));
  }
  const pids = { relay: rig.bullmqRelay.pid, worker: rig.bullmqWorker.pid, redis: ctx.infra.redis.process.child.pid! };
  const window = await measureWindow(rig, pids, async () => {
    await rig.redis.set(goKey, '1', 'EX', 3600);
    while ((await rig.queue.getActiveCount()) > 0 || (await rig.queue.getWaitingCount()) > 0) await new Promise((r) => setTimeout(r, 50));
    const produced = await Promise.all(
      ids.map(async (id) => {
        const job = await Job.fromId(rig.queue, id);
        return (job?.returnvalue ?? { calls: 0, published: 0, dropped: 0 }) as { calls: number; published: number; dropped: number };
      }),
    );
    const expected = Object.fromEntries(ids.map((id, i) => [id, produced[i]!.published]));
    await rig.clients.call('waitDelivered', { expected, timeoutMs: 5000 });
    return { produced, expected };
  });
  const got = await rig.clients.call<ClientResults>('results', { expected: window.value.expected });
  await rig.clients.call('close');
  await rig.queue.clean(0, jobs * 2, 'completed');
  return phaseResult('bullmq', jobs, got, window, { coalesced: 0, drops: window.value.produced.reduce((s, p) => s + p.dropped, 0) });
}

const workerCpuPerUpdate = (p: PhaseResult) => ((p.cpuSeconds.worker ?? Number.NaN) * 1e6) / Math.max(1, p.delivered);
const sumCpu = (p: PhaseResult) => Object.entries(p.cpu).reduce((s, [name, v]) => (name === 'temporal' ? s : s + v), 0);

/**
 * Benchmarks 1 (progress latency against the bare floor) and 2 (the BullMQ peer), measured in the
 * same run: for each repeat and each load, floor, project and BullMQ one after the other.
 */
export async function runProgressBenchmarks(ctx: BenchContext): Promise<BenchResult[]> {
  const loads = ctx.scales.jobs ?? (ctx.smoke ? [1, 5] : [1, 100, 1000]);
  const updates = ctx.smoke ? 10 : 100;
  const rig = await startProgressRig(ctx, Math.max(...loads));
  const phases: PhaseResult[] = [];
  const failures: string[] = [];
  try {
    for (let rep = 0; rep < ctx.repeats; rep++) {
      for (const jobs of loads) {
        for (const [system, run] of [
          ['floor', runFloor],
          ['project', runProject],
          ['bullmq', runBullmq],
        ] as const) {
          ctx.log(`progress: repeat ${rep + 1}/${ctx.repeats}, ${jobs} jobs × ${HZ} Hz, ${system}`);
          let phase: PhaseResult;
          try {
            phase = await run(ctx, rig, jobs, updates);
          } catch (err) {
            // One failed phase must not void the others: it is reported, and its figures are missing (n/a).
            const message = (err as Error).message.split('\n')[0] ?? String(err);
            ctx.log(`  failed: ${message}`);
            failures.push(`repeat ${rep + 1}, ${jobs} jobs, ${system}: ${message}`);
            await rig.clients.call('close').catch(() => {});
            continue;
          }
          // fmt, not toFixed: a phase with no latency sample (its summary crossed the client's IPC as JSON,
          // where NaN is null) is reported by its delivered count below, not by a TypeError here.
          ctx.log(
            `  p50 ${fmt(phase.latency.p50, 'ms')}, p99 ${fmt(phase.latency.p99, 'ms')}, max ${fmt(phase.latency.max, 'ms')}, ` +
              `delivered ${phase.delivered}/${phase.expected}, finals ${phase.finals}/${jobs}, cpu ${JSON.stringify(phase.cpu)}`,
          );
          phases.push(phase);
        }
      }
    }
  } finally {
    await rig.stop();
  }

  const latencyRows: ResultRow[] = [];
  const peerRows: ResultRow[] = [];
  for (const jobs of loads) {
    const of = (system: PhaseResult['system']) => phases.filter((p) => p.system === system && p.jobs === jobs);
    const [floor, project, bullmq] = [of('floor'), of('project'), of('bullmq')];
    const scale = `${jobs} × ${HZ} Hz`;
    const p99Target = jobs >= 1000 ? 4 : 2.5;
    for (const q of ['p50', 'p95', 'p99', 'max'] as const) {
      const target =
        q === 'p50' && jobs === 100
          ? { text: '≤ 0.5 ms, ≤ 2.5× floor', met: (m: number, r: number) => m <= 0.5 && r <= 2.5 }
          : q === 'p99' && jobs >= 100
            ? { text: `≤ ${p99Target} ms, ≤ 2.5× floor`, met: (m: number, r: number) => m <= p99Target && r <= 2.5 }
            : undefined;
      latencyRows.push(
        row(
          `latency ${q}`,
          scale,
          'ms',
          project.map((p) => p.latency[q]),
          { name: 'floor', values: floor.map((p) => p.latency[q]) },
          target,
        ),
      );
      peerRows.push(
        row(
          `latency ${q}`,
          scale,
          'ms',
          project.map((p) => p.latency[q]),
          { name: 'BullMQ', values: bullmq.map((p) => p.latency[q]) },
        ),
      );
    }
    latencyRows.push(
      row(
        'lost (expected − delivered)',
        scale,
        'msgs',
        project.map((p) => p.expected - p.delivered),
        {
          name: 'floor',
          values: floor.map((p) => p.expected - p.delivered),
        },
        { text: '0', met: (m) => m === 0 },
      ),
      row(
        'final state missing',
        scale,
        'jobs',
        project.map((p) => p.jobs - p.finals),
        undefined,
        { text: '0', met: (m) => m === 0 },
      ),
      row(
        'delivered',
        scale,
        'msgs',
        project.map((p) => p.delivered),
        { name: 'floor', values: floor.map((p) => p.delivered) },
      ),
      row(
        'coalesced by the reporter',
        scale,
        'calls',
        project.map((p) => p.coalesced),
      ),
    );
    peerRows.push(
      row(
        'lost (expected − delivered)',
        scale,
        'msgs',
        project.map((p) => p.expected - p.delivered),
        {
          name: 'BullMQ',
          values: bullmq.map((p) => p.expected - p.delivered),
        },
      ),
      row('CPU, all processes but Temporal', scale, 'cores', project.map(sumCpu), { name: 'BullMQ', values: bullmq.map(sumCpu) }),
      // The producer's own cost of one update (report call to Redis, with its heartbeats): issue 22's
      // "worker CPU per delivered update".
      row('worker CPU per delivered update', scale, 'µs', project.map(workerCpuPerUpdate), {
        name: 'BullMQ',
        values: bullmq.map(workerCpuPerUpdate),
      }),
      row(
        'Redis CPU',
        scale,
        'cores',
        project.map((p) => p.cpu.redis ?? Number.NaN),
        { name: 'BullMQ', values: bullmq.map((p) => p.cpu.redis ?? Number.NaN) },
      ),
      row(
        'Redis commands per delivered update',
        scale,
        'cmds',
        project.map((p) => p.redisCommands / Math.max(1, p.delivered)),
        {
          name: 'BullMQ',
          values: bullmq.map((p) => p.redisCommands / Math.max(1, p.delivered)),
        },
      ),
    );
  }
  const details = { hz: HZ, updatesPerJob: updates, loads, phases };
  return [
    {
      id: 'progress-latency',
      title: '1. Progress latency',
      status: 'ok',
      rows: latencyRows,
      details: { ...details, failures },
      notes: failures.map((f) => `phase failed (its figures are missing): ${f}`),
    },
    {
      id: 'progress-peer',
      title: '2. Peer: BullMQ',
      status: 'ok',
      rows: peerRows,
      details: { see: 'progress-latency.details.phases' },
      notes: [],
    },
  ];
}
