import { largeAsset } from '../assets/large-asset.js';
import type { BenchContext } from '../lib/bench-context.js';
import { cpuSeconds } from '../lib/proc-stats.js';
import { row, type BenchResult } from '../lib/report.js';
import { OwnerSocket, submitJob, type PipelineStack } from './pipeline-stack.js';

const SAMPLE_EVERY_MS = 20;
/** The worker counts as stopped once it uses at most this share of a core over QUIET_WINDOW_MS (its idle polling). */
const IDLE_CORE_SHARE = 0.1;
const QUIET_WINDOW_MS = 300;
/** How long sampling goes on after the request: far past the 2 s target, so a late stop is still seen. */
const SAMPLE_FOR_MS = 10_000;

interface CpuSample {
  at: number;
  cpu: number;
}

/** One clock tick of /proc CPU times (10 ms): the resolution of a reading. */
const TICK_SECONDS = 0.01;

/**
 * Earliest sample after which the process stays idle: from it to every later sample, the CPU it used
 * is at most IDLE_CORE_SHARE of a core (plus one tick of reading resolution), and at least
 * QUIET_WINDOW_MS of samples follow. NaN when it never went quiet while sampled.
 */
export function stoppedAt(samples: CpuSample[]): number {
  const last = samples.at(-1);
  for (let i = 0; last && i < samples.length; i++) {
    const from = samples[i]!;
    if (last.at - from.at < QUIET_WINDOW_MS) break;
    const idle = samples.slice(i + 1).every((s) => s.cpu - from.cpu <= IDLE_CORE_SHARE * ((s.at - from.at) / 1000) + TICK_SECONDS);
    if (idle) return from.at;
  }
  return Number.NaN;
}

/**
 * Benchmark 5: from the artist's cancel request (POST /api/jobs/:id/cancel) to the HPC worker's CPU
 * work stopping, while buildLods simplifies a large generated mesh. "Stopped" is read from the worker
 * process's CPU time (/proc/<pid>/stat utime + stime, sampled every 20 ms): the first moment after which
 * it stays at idle. The `cancelled` event on the socket (after the workflow's cleanup) is recorded too.
 */
export async function runCancelLatency(ctx: BenchContext, stack: PipelineStack): Promise<BenchResult> {
  const spec = { triangles: ctx.smoke ? 100_000 : 1_000_000, textures: 0, textureSize: 16, seed: 5 };
  const file = await largeAsset(spec);
  const token = ctx.infra.tokenFor('bench-cancel');
  const socket = await OwnerSocket.open(stack.api.wsUrl, token);
  const runs: { requestToStoppedMs: number; requestToCancelledEventMs: number; busyCoreShareBefore: number }[] = [];
  try {
    for (let r = 0; r < ctx.repeats; r++) {
      // mobile: LODs at 50, 25 and 10 %, so buildLods simplifies the full mesh three times.
      const { jobId } = await submitJob(stack.api.url, token, [file], { preset: 'mobile' });
      await socket.next(
        (m) => m.jobId === jobId && m.type === 'progress' && m.stage === 'lods' && String(m.message ?? '').startsWith('Simplifying'),
        600_000,
        'simplification to start',
      );
      const pid = stack.hpc.pid;
      const beforeAt = performance.now();
      const beforeCpu = cpuSeconds(pid);
      const requestedAt = performance.now();
      const samples: CpuSample[] = [{ at: requestedAt, cpu: cpuSeconds(pid) }];
      const sampler = setInterval(() => samples.push({ at: performance.now(), cpu: cpuSeconds(pid) }), SAMPLE_EVERY_MS);
      try {
        const res = await fetch(`${stack.api.url}/api/jobs/${jobId}/cancel`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        if (res.status !== 202) throw new Error(`Cancel refused: ${res.status} ${await res.text()}`);
        const endedAt = await socket.terminal(jobId, 120_000);
        const event = socket.eventOf(jobId, endedAt);
        // Sample on until the worker has been idle for a while after the job ended (or long past the target).
        await new Promise<void>((resolve) => {
          const wait = setInterval(() => {
            const idleSince = stoppedAt(samples);
            const settled = Number.isFinite(idleSince) && performance.now() - Math.max(idleSince, endedAt) >= 2 * QUIET_WINDOW_MS;
            if (!settled && performance.now() - requestedAt < SAMPLE_FOR_MS) return;
            clearInterval(wait);
            resolve();
          }, 100);
        });
        const stopped = stoppedAt(samples);
        // How busy the worker was just before: shows the cancel hit running compute, not an idle worker.
        const firstBusy = samples.find((s) => s.at - requestedAt >= 200);
        const busyCoreShareBefore = firstBusy ? (firstBusy.cpu - beforeCpu) / ((firstBusy.at - beforeAt) / 1000) : Number.NaN;
        runs.push({
          requestToStoppedMs: stopped - requestedAt,
          requestToCancelledEventMs: event === 'cancelled' ? endedAt - requestedAt : Number.NaN,
          busyCoreShareBefore,
        });
        ctx.log(
          `cancel: stopped ${(stopped - requestedAt).toFixed(0)} ms after the request; job ended ${event ?? '?'} after ${(endedAt - requestedAt).toFixed(0)} ms`,
        );
      } finally {
        clearInterval(sampler);
      }
    }
  } finally {
    socket.close();
  }
  return {
    id: 'cancel-latency',
    title: '5. Cancel latency',
    status: 'ok',
    rows: [
      row(
        'cancel request → HPC CPU stopped',
        `${spec.triangles.toLocaleString('en')} triangles, buildLods`,
        'ms',
        runs.map((r) => r.requestToStoppedMs),
        undefined,
        { text: '≤ 2000 ms', met: (m) => m <= 2000 },
      ),
      row(
        'cancel request → `cancelled` on the socket',
        `${spec.triangles.toLocaleString('en')} triangles`,
        'ms',
        runs.map((r) => r.requestToCancelledEventMs),
      ),
    ],
    details: { spec, runs, sampleEveryMs: SAMPLE_EVERY_MS, idleCoreShare: IDLE_CORE_SHARE, quietWindowMs: QUIET_WINDOW_MS },
    notes: [
      `"stopped" = first 20 ms sample of the HPC worker's utime+stime after which every ${QUIET_WINDOW_MS} ms window stays ≤ ${IDLE_CORE_SHARE * 100} % of a core (its idle polling); on a shared machine other processes do not count, but a slow scheduler delays the stop it observes.`,
    ],
  };
}
