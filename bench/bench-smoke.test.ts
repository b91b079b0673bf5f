import { inject, describe, expect, it } from 'vitest';
import { runBenchmarks, type BenchRun } from './run.js';

/**
 * Keeps `npm run bench` working: runs every benchmark in smoke mode (tiny counts, a few seconds each)
 * on real Redis, Temporal and the real API, and checks each produced its counts and fields.
 * Benchmarks are not tests: nothing here asserts a time or a speed.
 */
describe('npm run bench -- --smoke', () => {
  let run: BenchRun;
  const result = (id: string) => run.results.find((r) => r.id === id)!;

  it('runs every benchmark to a result', async () => {
    const cliPath = inject('temporalCliPath');
    if (cliPath) process.env.TEMPORAL_CLI_PATH = cliPath;
    run = await runBenchmarks({ smoke: true, repeats: 1, only: ['progress', 'fanout', 'upload', 'pipeline'], log: () => {} });
    const failed = run.results.filter((r) => r.status === 'failed');
    expect(failed.map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    expect(run.machine.cores).toBeGreaterThan(0);
  }, 300_000);

  it('measures progress for floor, project and BullMQ with every update delivered', () => {
    const phases = result('progress-latency').details.phases as {
      system: string;
      jobs: number;
      expected: number;
      delivered: number;
      finals: number;
      latency: { count: number; p50: number; p99: number };
    }[];
    expect(new Set(phases.map((p) => p.system))).toEqual(new Set(['floor', 'project', 'bullmq']));
    for (const p of phases) {
      expect(p.expected, `${p.system} × ${p.jobs}`).toBeGreaterThan(0);
      expect(p.delivered, `${p.system} × ${p.jobs} lost updates`).toBe(p.expected);
      expect(p.finals, `${p.system} × ${p.jobs} final states`).toBe(p.jobs);
      expect(p.latency.count).toBe(p.delivered);
      expect(Number.isFinite(p.latency.p99)).toBe(true);
    }
    const rows = result('progress-latency').rows;
    expect(rows.find((r) => r.metric === 'latency p99')?.reference?.name).toBe('floor');
    expect(result('progress-peer').rows.find((r) => r.metric === 'latency p99')?.reference?.name).toBe('BullMQ');
  });

  it('measures fan-out memory, Redis connections and CPU', () => {
    const rows = result('fanout').rows;
    const perSocket = rows.find((r) => r.metric === 'RSS per socket')!;
    expect(Number.isFinite(perSocket.value.median)).toBe(true);
    expect(Number.isFinite(perSocket.reference!.value.median)).toBe(true);
    expect(rows.find((r) => r.metric === 'Redis subscriber connections (API)')?.value.median).toBe(1);
    expect(rows.find((r) => r.metric === 'lost (expected − delivered)')?.value.median).toBe(0);
  });

  it('measures upload throughput and RSS growth, multipart and resumable (tus), against the bare sink', () => {
    const runs = result('upload').details.runs as { system: string; status: number; mibPerSecond: number; rssGrowth: number }[];
    expect(runs.map((r) => r.system).sort()).toEqual(['api', 'bare', 'resumable']);
    expect(runs.find((r) => r.system === 'api')?.status).toBe(202);
    expect(runs.find((r) => r.system === 'resumable')?.status).toBe(202);
    for (const r of runs) expect(Number.isFinite(r.mibPerSecond) && Number.isFinite(r.rssGrowth)).toBe(true);
  });

  it('measures orchestration overhead per asset and saturated throughput against raw compute', () => {
    const r = result('orchestration-overhead');
    const rows = r.rows;
    for (const asset of ['TwoCubes.glb', 'DamagedHelmet.glb']) {
      const e2e = rows.find((x) => x.metric === 'job time, end to end' && x.scale === asset)!;
      expect(Number.isFinite(e2e.value.median) && Number.isFinite(e2e.reference!.value.median)).toBe(true);
      expect(rows.some((x) => x.metric.startsWith('orchestration overhead') && x.scale === asset)).toBe(true);
    }
    const throughput = rows.find((x) => x.metric === 'throughput, HPC queue saturated')!;
    expect(throughput.value.median).toBeGreaterThan(0);
    expect(throughput.reference!.value.median).toBeGreaterThan(0);
  });

  it('measures cancel latency from the request to the HPC worker going idle', () => {
    const runs = result('cancel-latency').details.runs as { requestToStoppedMs: number; requestToCancelledEventMs: number }[];
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) {
      expect(Number.isFinite(run.requestToStoppedMs)).toBe(true);
      expect(Number.isFinite(run.requestToCancelledEventMs)).toBe(true);
    }
  });

  it('measures compute per stage, peak RSS and output size beside gltfpack', () => {
    const rows = result('compute').rows;
    for (const stage of ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package']) {
      expect(Number.isFinite(rows.find((x) => x.metric === `stage ${stage}`)?.value.median)).toBe(true);
    }
    expect(rows.find((x) => x.metric === 'peak RSS (in-process run)')!.value.median).toBeGreaterThan(0);
    const size = rows.find((x) => x.metric === 'output geometry size (all LOD GLBs − images)')!;
    expect(size.value.median).toBeGreaterThan(0);
    expect(size.reference?.name).toBe('gltfpack');
    expect(size.reference!.value.median).toBeGreaterThan(0);
    // Sizes are compared at stated triangle counts: each simplified level's count beside gltfpack's.
    for (const level of [1, 2]) {
      const triangles = rows.find((x) => x.metric === `LOD${level} triangles`)!;
      expect(triangles.value.median).toBeGreaterThan(0);
      expect(triangles.reference?.name).toBe('gltfpack');
      expect(triangles.reference!.value.median).toBeGreaterThan(0);
    }
  });
});
