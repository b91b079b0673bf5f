import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { BenchContext } from '../lib/bench-context.js';
import { startApi } from '../lib/bench-stack.js';
import { memoryOf, startCpuMeter } from '../lib/proc-stats.js';
import { clientsByName } from '../lib/redis-stats.js';
import { row, type BenchResult, type ResultRow } from '../lib/report.js';
import { spawnNode, type BenchChild } from '../lib/rpc.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { connectOrThrow, FLOOR_PREFIX, HZ, phaseOf, startSyntheticJobs, type ClientResults } from '../progress/progress-latency.js';

/** Jobs whose updates fan out to every socket: each socket follows one of them. */
const JOBS = 10;

interface FanoutPhase {
  system: 'project' | 'floor';
  sockets: number;
  baselineRss: number;
  connectedRss: number;
  bytesPerSocket: number;
  connectMs: number;
  /** Redis connections the server process opened, by connection name, and subscriptions on them. */
  redisConnections: Record<string, { connections: number; subscriptions: number }>;
  /** Cores the server process used while every job reported at 10 Hz to every socket. */
  cpuCores: number;
  delivered: number;
  expected: number;
  latency: ClientResults['latency'];
}

/** Connections of `after` not in `before`, by name: what the process started in between opened. */
function connectionDelta(
  before: Record<string, { connections: number; subscriptions: number }>,
  after: Record<string, { connections: number; subscriptions: number }>,
): Record<string, { connections: number; subscriptions: number }> {
  const out: Record<string, { connections: number; subscriptions: number }> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { connections: 0, subscriptions: 0 };
    if (a.connections - b.connections > 0 || a.subscriptions - b.subscriptions > 0)
      out[name] = { connections: a.connections - b.connections, subscriptions: a.subscriptions - b.subscriptions };
  }
  return out;
}

/** Lets the server settle after the connect burst, so RSS is read from a steady state rather than mid-allocation. */
async function settledRss(pid: number): Promise<number> {
  let last = memoryOf(pid).rss;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const now = memoryOf(pid).rss;
    if (Math.abs(now - last) < 256 * 1024) return now;
    last = now;
  }
  return last;
}

async function runProjectFanout(
  ctx: BenchContext,
  redis: Redis,
  clients: BenchChild,
  sockets: number,
  updates: number,
): Promise<FanoutPhase> {
  const before = await clientsByName(redis);
  // A fresh API process per size, so its memory holds only these sockets.
  const api = await startApi(ctx.infra);
  try {
    const jobs = await startSyntheticJobs(ctx, redis, { jobs: JOBS, updates, owners: JOBS });
    const subscriptions = Array.from({ length: sockets }, (_, i) => {
      const spec = jobs.specs[i % JOBS]!;
      return { jobId: spec.jobId, token: jobs.tokenOf(spec.owner) };
    });
    // Warm the code paths (JWT, subscribe, snapshot) so the baseline is not taken before lazy initialisation.
    connectOrThrow(await clients.call('connect', { mode: 'api', url: api.wsUrl, subscriptions: subscriptions.slice(0, JOBS) }), 'warm-up');
    await clients.call('close');
    const baselineRss = await settledRss(api.process.pid);
    const connected = await clients.call<{ connected: number; failed: number; firstError: string; ms: number }>(
      'connect',
      { mode: 'api', url: api.wsUrl, subscriptions, concurrency: 200 },
      900_000,
    );
    connectOrThrow(connected, 'API');
    const connectedRss = await settledRss(api.process.pid);
    const redisConnections = connectionDelta(before, await clientsByName(redis));
    const stopCpu = startCpuMeter({ api: api.process.pid });
    const produced = await jobs.go();
    const expected = Object.fromEntries(jobs.specs.map((s, i) => [s.jobId, produced[i]!.published]));
    await clients.call('waitDelivered', { expected, timeoutMs: 15_000 });
    const cpu = stopCpu().api!;
    await jobs.release();
    const got = await clients.call<ClientResults>('results', { expected });
    await clients.call('close');
    return {
      system: 'project',
      sockets,
      baselineRss,
      connectedRss,
      bytesPerSocket: (connectedRss - baselineRss) / sockets,
      connectMs: connected.ms,
      redisConnections,
      cpuCores: cpu.coreShare,
      delivered: got.delivered,
      expected: got.expected,
      latency: got.latency,
    };
  } finally {
    await api.stop();
  }
}

async function runFloorFanout(ctx: BenchContext, clients: BenchChild, sockets: number, updates: number): Promise<FanoutPhase> {
  const env = ctx.infra.env;
  const relay = spawnNode('floor-relay', 'bench/progress/bare-relay.ts', {
    env,
    args: ['--source', 'redis', '--redis-url', ctx.infra.redis.url, '--prefix', FLOOR_PREFIX],
  });
  const publisher = spawnNode('floor-publisher', 'bench/progress/bare-publisher.ts', { env });
  try {
    const { url } = await relay.call<{ url: string }>('address', undefined, 60_000);
    const jobs = Array.from({ length: JOBS }, (_, i) => ({ jobId: `floor-${randomUUID()}`, phase: phaseOf(i) }));
    const subscriptions = Array.from({ length: sockets }, (_, i) => ({ jobId: jobs[i % JOBS]!.jobId }));
    connectOrThrow(await clients.call('connect', { mode: 'relay', url, subscriptions: subscriptions.slice(0, JOBS) }), 'warm-up');
    await clients.call('close');
    await waitFor(async () => (await relay.call<number>('sockets')) === 0, {
      timeoutMs: 10_000,
      what: 'the relay to drop warm-up sockets',
    });
    const baselineRss = await settledRss(relay.pid);
    const connected = await clients.call<{ connected: number; failed: number; firstError: string; ms: number }>(
      'connect',
      { mode: 'relay', url, subscriptions, concurrency: 200 },
      900_000,
    );
    connectOrThrow(connected, 'floor');
    const connectedRss = await settledRss(relay.pid);
    const stopCpu = startCpuMeter({ relay: relay.pid });
    const produced = await publisher.call<{ jobId: string; published: number }[]>('run', {
      redisUrl: ctx.infra.redis.url,
      jobs,
      updates,
      hz: HZ,
      prefix: FLOOR_PREFIX,
    });
    const expected = Object.fromEntries(produced.map((p) => [p.jobId, p.published]));
    await clients.call('waitDelivered', { expected, timeoutMs: 15_000 });
    const cpu = stopCpu().relay!;
    const got = await clients.call<ClientResults>('results', { expected });
    await clients.call('close');
    return {
      system: 'floor',
      sockets,
      baselineRss,
      connectedRss,
      bytesPerSocket: (connectedRss - baselineRss) / sockets,
      connectMs: connected.ms,
      redisConnections: { floor: { connections: 1, subscriptions: JOBS } },
      cpuCores: cpu.coreShare,
      delivered: got.delivered,
      expected: got.expected,
      latency: got.latency,
    };
  } finally {
    await Promise.all([relay.stop(), publisher.stop()]);
  }
}

/**
 * Benchmark 3: many authenticated sockets on one API process, each following one of 10 jobs that
 * report at 10 Hz. RSS per socket, Redis connections the API holds, and its CPU, beside a bare ws
 * relay holding the same sockets in the same run.
 */
export async function runFanoutBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const sizes = ctx.scales.sockets ?? (ctx.smoke ? [50] : [1000, 10_000]);
  const updates = ctx.smoke ? 10 : 100;
  const redis = new Redis(ctx.infra.redis.url);
  await ctx.benchWorker();
  const clients = spawnNode('socket-clients', 'bench/progress/latency-clients.ts', { env: ctx.infra.env });
  const phases: FanoutPhase[] = [];
  try {
    for (let rep = 0; rep < ctx.repeats; rep++) {
      for (const sockets of sizes) {
        ctx.log(`fan-out: repeat ${rep + 1}/${ctx.repeats}, ${sockets} sockets, floor`);
        const floor = await runFloorFanout(ctx, clients, sockets, updates);
        ctx.log(
          `  ${Math.round(floor.bytesPerSocket)} B/socket, cpu ${floor.cpuCores.toFixed(3)}, delivered ${floor.delivered}/${floor.expected}`,
        );
        ctx.log(`fan-out: repeat ${rep + 1}/${ctx.repeats}, ${sockets} sockets, project`);
        const project = await runProjectFanout(ctx, redis, clients, sockets, updates);
        ctx.log(
          `  ${Math.round(project.bytesPerSocket)} B/socket, cpu ${project.cpuCores.toFixed(3)}, delivered ${project.delivered}/${project.expected}, ` +
            `redis ${JSON.stringify(project.redisConnections)}`,
        );
        phases.push(floor, project);
      }
    }
  } finally {
    redis.disconnect();
    await clients.stop();
  }
  const rows: ResultRow[] = [];
  for (const sockets of sizes) {
    const of = (system: FanoutPhase['system']) => phases.filter((p) => p.system === system && p.sockets === sockets);
    const [project, floor] = [of('project'), of('floor')];
    const scale = `${sockets.toLocaleString('en-US')} sockets, ${JOBS} jobs × ${HZ} Hz`;
    const subscriberConnections = (p: FanoutPhase) => p.redisConnections['asset-farm:subscriber']?.connections ?? 0;
    const allConnections = (p: FanoutPhase) => Object.values(p.redisConnections).reduce((s, c) => s + c.connections, 0);
    rows.push(
      row(
        'RSS per socket',
        scale,
        'KB',
        project.map((p) => p.bytesPerSocket / 1024),
        { name: 'bare ws', values: floor.map((p) => p.bytesPerSocket / 1024) },
        {
          text: '≤ 20 KB',
          met: (m) => m <= 20,
        },
      ),
      row('Redis subscriber connections (API)', scale, 'conns', project.map(subscriberConnections), undefined, {
        text: '1 per process',
        met: (m) => m === 1,
      }),
      row('Redis connections, all (API)', scale, 'conns', project.map(allConnections)),
      row(
        'server CPU at 10 Hz',
        scale,
        'cores',
        project.map((p) => p.cpuCores),
        { name: 'bare ws', values: floor.map((p) => p.cpuCores) },
      ),
      row(
        'delivery latency p99',
        scale,
        'ms',
        project.map((p) => p.latency.p99),
        { name: 'bare ws', values: floor.map((p) => p.latency.p99) },
      ),
      row(
        'lost (expected − delivered)',
        scale,
        'msgs',
        project.map((p) => p.expected - p.delivered),
        {
          name: 'bare ws',
          values: floor.map((p) => p.expected - p.delivered),
        },
      ),
      row(
        'connect + subscribe, all sockets',
        scale,
        's',
        project.map((p) => p.connectMs / 1000),
        { name: 'bare ws', values: floor.map((p) => p.connectMs / 1000) },
      ),
    );
  }
  return {
    id: 'fanout',
    title: '3. Fan-out and memory',
    status: 'ok',
    rows,
    details: { jobs: JOBS, hz: HZ, updatesPerJob: updates, phases },
    notes: [],
  };
}
