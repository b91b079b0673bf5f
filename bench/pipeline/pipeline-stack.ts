import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { z } from 'zod';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { waitForPoller } from '../../scripts/lib/temporal-server.js';
import type { BenchInfra } from '../lib/bench-stack.js';
import { startApi, type RunningApi } from '../lib/bench-stack.js';
import { spawnNode, type BenchChild } from '../lib/rpc.js';
import { withHpcProcessEnv } from '../../worker/hpc-process-env.js';

/**
 * The whole product as an artist meets it, for benchmarks 4 and 5: the real API, the orchestrator
 * worker and the HPC worker (worker/*.ts, HPC_MAX_CONCURRENT_ACTIVITIES = cores), each its own
 * process on the run's Redis and Temporal.
 */
export interface PipelineStack {
  api: RunningApi;
  orchestrator: BenchChild;
  hpc: BenchChild;
  hpcSlots: number;
  stop(): Promise<void>;
}

export async function startPipelineStack(infra: BenchInfra): Promise<PipelineStack> {
  const hpcSlots = os.availableParallelism();
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    const worker = async (name: 'orchestrator' | 'hpc') => {
      const proc = spawnNode(`worker-${name}`, `worker/${name}.ts`, {
        ipc: false,
        env: ((env) => (name === 'hpc' ? withHpcProcessEnv(env) : env))({ ...infra.env, HPC_MAX_CONCURRENT_ACTIVITIES: String(hpcSlots) }),
      });
      started.push(proc);
      await waitForPoller({
        address: infra.temporal.address,
        namespace: infra.temporal.namespace,
        taskQueue: name === 'hpc' ? HPC_TASK_QUEUE : ORCHESTRATOR_TASK_QUEUE,
        kind: name === 'hpc' ? 'activity' : 'workflow',
        pid: proc.pid,
        timeoutMs: 180_000,
        isAlive: () => proc.child.exitCode === null,
      }).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${proc.tail.join('\n')}`);
      });
      return proc;
    };
    const [orchestrator, hpc] = await Promise.all([worker('orchestrator'), worker('hpc')]);
    // Benchmark 4 submits many jobs at once as one owner; the per-owner rate limit is not what is measured.
    // Jobs run the stages the in-process runner runs (bench/pipeline/direct-pipeline.ts): no turntable,
    // whose seconds of Blender would otherwise count as orchestration on a machine with Blender.
    const api = await startApi(infra, { API_SUBMIT_BURST: '100000', API_SUBMIT_PER_MINUTE: '100000', TURNTABLES: 'false' });
    started.push(api);
    return { api, orchestrator, hpc, hpcSlots, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const JobMessage = z.looseObject({
  type: z.string(),
  jobId: z.string().optional(),
  event: z.string().optional(),
  stage: z.string().optional(),
});
type JobMessage = z.infer<typeof JobMessage>;

/** One owner's socket following all their jobs (subscribeAll), stamping each message's arrival. */
export class OwnerSocket {
  private readonly waiters: { match: (m: JobMessage) => boolean; resolve: (at: number) => void }[] = [];
  private readonly seen: { message: JobMessage; at: number }[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const at = performance.now();
      const parsed = JobMessage.safeParse(JSON.parse(String(data)));
      if (!parsed.success) return;
      this.seen.push({ message: parsed.data, at });
      for (const waiter of [...this.waiters]) {
        if (!waiter.match(parsed.data)) continue;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(at);
      }
    });
  }

  static async open(wsUrl: string, token: string): Promise<OwnerSocket> {
    const ws = new WebSocket(wsUrl, ['asset-farm.v1', `bearer.${token}`]);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const socket = new OwnerSocket(ws);
    const subscribed = socket.next((m) => m.type === 'subscribed', 30_000, 'subscribeAll');
    ws.send(JSON.stringify({ type: 'subscribeAll' }));
    await subscribed;
    return socket;
  }

  /** Arrival time (performance.now) of the first message, already seen or coming, that matches. */
  next(match: (m: JobMessage) => boolean, timeoutMs: number, what: string): Promise<number> {
    const seen = this.seen.find((s) => match(s.message));
    if (seen) return Promise.resolve(seen.at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`No ${what} within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
  }

  /** The terminal event of a job: completed, failed, cancelled or terminated. */
  terminal(jobId: string, timeoutMs: number): Promise<number> {
    return this.next(
      (m) => m.jobId === jobId && m.type === 'event' && ['completed', 'failed', 'cancelled', 'terminated'].includes(m.event ?? ''),
      timeoutMs,
      `end of ${jobId}`,
    );
  }

  eventOf(jobId: string, at: number): string | undefined {
    return this.seen.find((s) => s.at === at && s.message.jobId === jobId)?.message.event;
  }

  close(): void {
    this.ws.close();
  }
}

const Accepted = z.object({ jobId: z.string() });

/** Uploads files as the web page does; resolves with the job id and when the 202 arrived. */
export async function submitJob(
  apiUrl: string,
  token: string,
  files: string[],
  options: Record<string, unknown>,
): Promise<{ jobId: string; acceptedAt: number }> {
  const form = new FormData();
  for (const file of files) form.append('files', new Blob([await readFile(file)]), path.basename(file));
  form.append('options', JSON.stringify(options));
  const res = await fetch(`${apiUrl}/api/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  const acceptedAt = performance.now();
  if (res.status !== 202) throw new Error(`Upload refused: ${res.status} ${await res.text()}`);
  return { jobId: Accepted.parse(await res.json()).jobId, acceptedAt };
}
