import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { expectSnapshotsAgree, reportFigures, submitJobs, whenJobsRunning } from './chaos-stack.js';
import { JobObserver } from './job-observer.js';

/** How long Redis stays down: the 30 s, long enough for many heartbeats and stage ends to fall in it. */
const REDIS_OUTAGE_MS = 30_000;
const USERS = ['ana', 'ben', 'cho', 'dev'];
const SETTLE_MS = 300_000;

/**
 * The long faults of issue 9 on one real stack (Temporal with its SQLite file, Redis with its append-only
 * file, both workers and the API as processes), one after another. Each run submits jobs for several users,
 * follows them over sockets like a careful client (reconnect + lastSeq), injects the fault while they run,
 * and prints and asserts the figures: every job ends (lost = 0), no seq gap or duplicate on any stream.
 * The HPC worker kill is proven in test/chaos/hpc-worker-kill.chaos.test.ts and not repeated here.
 */
describe('faults: nothing lost', () => {
  let stack: TestStack;
  let observer: JobObserver;
  beforeAll(async () => {
    stack = await startStack({ temporalDbFile: true, env: { API_SUBMIT_BURST: '100', API_RECONCILE_INTERVAL_MS: '2000' } });
  });
  afterEach(() => observer?.close());
  afterAll(async () => {
    await stack?.stop();
  });
  const newObserver = () => (observer = new JobObserver(stack.wsUrl, (user) => stack.tokenFor(user)));
  const kill9 = (pid: number | undefined) => process.kill(-pid!, 'SIGKILL');
  /** Compute activities (stages) completed so far over all these jobs, straight from Temporal's histories (not through Redis or the API). */
  async function activitiesCompleted(jobIds: string[]): Promise<number> {
    const connection = await Connection.connect({ address: stack.temporalAddress });
    try {
      const client = new Client({ connection, namespace: stack.namespace });
      const counts = await Promise.all(
        jobIds.map(async (id) => {
          const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
          const types = new Map(events.map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes?.activityType?.name]));
          // Compute stages only: the light event-publishing activity completes (with null) while Redis is down anyway.
          return events.filter((e) => {
            const scheduled = e.activityTaskCompletedEventAttributes?.scheduledEventId;
            return scheduled != null && types.get(String(scheduled)) !== 'publishJobEvent';
          }).length;
        }),
      );
      return counts.reduce((a, b) => a + b, 0);
    } finally {
      await connection.close();
    }
  }

  it('Redis killed (kill -9) for 30 s and restarted: no job fails, progress resumes, snapshots right again', async () => {
    newObserver();
    // More jobs than the other runs: on two cores some are still queued or running when Redis comes back.
    await submitJobs(stack, observer, USERS, 16);
    await whenJobsRunning(observer, 2);
    const started = Date.now();
    const doneAtKill = await activitiesCompleted([...observer.jobs.keys()]);
    kill9(stack.redis.process.child.pid);
    await stack.redis.process.exited;
    // The outage itself: a fixed duration is the fault being injected, not a wait for something.
    await new Promise((resolve) => setTimeout(resolve, REDIS_OUTAGE_MS));
    // What Temporal says the jobs did during the outage: work must not wait for Redis.
    const doneDuringOutage = (await activitiesCompleted([...observer.jobs.keys()])) - doneAtKill;
    // Jobs still going when Redis comes back: their progress must resume on the same streams. Counted by
    // messages, not seq: with appendfsync everysec a kill -9 may cost the last second of writes, and the
    // stream then goes on from a `reset` snapshot with a lower seq (counted in figures.resets).
    const unfinishedAtRestart = [...observer.jobs.values()].filter((j) => !j.outcome).map((j) => [j.jobId, j.received] as const);
    await stack.restartRedis();
    await observer.settled(SETTLE_MS);
    const figures = observer.figures();
    const resumed = unfinishedAtRestart.filter(([id, received]) => observer.jobs.get(id)!.received > received).length;
    reportFigures('redis killed 30 s', figures, {
      outageMs: REDIS_OUTAGE_MS,
      stagesCompletedDuringOutage: doneDuringOutage,
      unfinishedAtRestart: unfinishedAtRestart.length,
      resumedAfterRestart: resumed,
      allDoneAfterRestartMs: Date.now() - started - REDIS_OUTAGE_MS,
    });
    expect(doneDuringOutage).toBeGreaterThan(0);
    expect(unfinishedAtRestart.length).toBeGreaterThan(0);
    expect(resumed).toBe(unfinishedAtRestart.length);
    expect(figures.completed).toBe(figures.submitted);
    await expectSnapshotsAgree(stack, observer);
  });

  it('orchestrator worker killed (kill -9) and restarted: workflows continue', async () => {
    newObserver();
    await submitJobs(stack, observer, USERS, 8);
    await whenJobsRunning(observer, 2);
    const orchestrator = stack.processes.get('worker:orchestrator')!;
    kill9(orchestrator.child.pid);
    await orchestrator.exited;
    await stack.startComponent('worker:orchestrator');
    await observer.settled(SETTLE_MS);
    const figures = observer.figures();
    reportFigures('orchestrator killed', figures);
    expect(figures.completed).toBe(figures.submitted);
    await expectSnapshotsAgree(stack, observer);
  });

  it('Temporal dev server stopped and restarted on its SQLite file: running jobs continue', async () => {
    newObserver();
    await submitJobs(stack, observer, USERS, 8);
    await whenJobsRunning(observer, 2);
    await stack.restartTemporal();
    await observer.settled(SETTLE_MS);
    const figures = observer.figures();
    reportFigures('temporal restarted', figures, {
      workersAlive: ['worker:hpc', 'worker:orchestrator', 'api'].filter((n) => stack.processes.get(n)!.child.exitCode === null).length,
    });
    expect(figures.completed).toBe(figures.submitted);
    await expectSnapshotsAgree(stack, observer);
  });

  it('API killed (kill -9) with sockets open and uploads in flight: clients resume with lastSeq, the interrupted upload never becomes a job', async () => {
    newObserver();
    await submitJobs(stack, observer, USERS, 6);
    await whenJobsRunning(observer, 2);
    // Uploads that send half of their body and then stall, as a slow artist connection would.
    const stalled = Array.from({ length: 3 }, () => {
      let push: (() => void) | null = null;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const boundary = 'chaos-boundary';
          controller.enqueue(
            new TextEncoder().encode(
              `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="half.glb"\r\nContent-Type: application/octet-stream\r\n\r\n`,
            ),
          );
          controller.enqueue(new Uint8Array(256 * 1024).fill(1));
          push = () => controller.close();
        },
      });
      const response = fetch(`${stack.apiUrl}/api/jobs`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${stack.tokenFor('interrupted')}`,
          'content-type': 'multipart/form-data; boundary=chaos-boundary',
        },
        body,
        duplex: 'half',
      } as RequestInit & { duplex: 'half' }).then(
        (res) => `answered ${res.status}`,
        (err: Error) => `failed: ${err.message}`,
      );
      return { response, end: () => push?.() };
    });
    const staging = path.join(stack.dataDir, 'uploads', 'tmp');
    await waitFor(() => existsSync(staging) && readdirSync(staging).length >= 3, {
      timeoutMs: 30_000,
      what: 'the stalled uploads to reach the API',
    });
    const api = stack.processes.get('api')!;
    kill9(api.child.pid);
    await api.exited;
    const interrupted = await Promise.all(stalled.map((s) => s.response));
    // The client is told: its request failed, it did not get a 202.
    for (const outcome of interrupted) expect(outcome).toMatch(/^failed/);
    await stack.startComponent('api');
    await observer.settled(SETTLE_MS);
    const figures = observer.figures();
    const listed = (await (
      await fetch(`${stack.apiUrl}/api/jobs`, { headers: { authorization: `Bearer ${stack.tokenFor('interrupted')}` } })
    ).json()) as { jobs: unknown[] };
    reportFigures('api killed', figures, {
      interruptedUploads: interrupted.length,
      jobsFromInterruptedUploads: listed.jobs.length,
      stagingFilesLeft: readdirSync(staging).length,
    });
    expect(figures.reconnects).toBeGreaterThanOrEqual(USERS.length);
    expect(figures.completed).toBe(figures.submitted);
    expect(listed.jobs).toEqual([]);
    await expectSnapshotsAgree(stack, observer);
  });

  it('storage write error while packaging (outputs folder made immutable): the stage retries cleanly, no partial output left', async () => {
    newObserver();
    const res = await uploadAsset(stack.apiUrl, stack.tokenFor('ana'), [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], {
      options: JSON.stringify({ preset: 'game-ready', lodRatios: [0.5, 0.25, 0.125] }),
    });
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    observer.track('ana', jobId);
    // The package stage writes its deliverables in its attempt's scratch folder (DATA_DIR/scratch/<pid>/<job>/
    // package-<id>/outputs) and publishes them to storage when the stage ends. The first LOD written there:
    // packaging is under way with more files to come. Then no write succeeds there (chattr +i: root ignores
    // file modes, not the immutable flag), as with a disk that refuses writes.
    const packageOutputs = (): string | undefined => {
      const scratch = path.join(stack.dataDir, 'scratch');
      for (const pid of existsSync(scratch) ? readdirSync(scratch) : []) {
        const jobDir = path.join(scratch, pid, jobId);
        for (const attempt of existsSync(jobDir) ? readdirSync(jobDir) : []) {
          const dir = path.join(jobDir, attempt, 'outputs');
          if (attempt.startsWith('package-') && existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('-lod0.glb'))) return dir;
        }
      }
      return undefined;
    };
    let outputs = '';
    await waitFor(() => Boolean((outputs = packageOutputs() ?? '')), { timeoutMs: 240_000, what: 'the first packaged LOD', intervalMs: 5 });
    execFileSync('chattr', ['+i', outputs]);
    let freed = false;
    try {
      await waitFor(() => observer.jobs.get(jobId)!.retriesSeen > 0 || observer.jobs.get(jobId)!.outcome !== null, {
        timeoutMs: 120_000,
        what: 'the package stage to fail and be retried',
      });
    } finally {
      execFileSync('chattr', ['-i', outputs]);
      freed = true;
    }
    await observer.settled(SETTLE_MS);
    const figures = observer.figures();
    const job = observer.jobs.get(jobId)!;
    const listing = (await (
      await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs`, { headers: { authorization: `Bearer ${stack.tokenFor('ana')}` } })
    ).json()) as { outputs: { name: string }[] };
    reportFigures('storage write error in package', figures, { outcome: job.outcome, freed, outputs: listing.outputs.map((o) => o.name) });
    if (job.outcome === 'completed') {
      // Exactly the deliverables: four LODs and the report (and the preview stage's turntable and thumbnail),
      // no half-written or temporary file.
      expect(
        listing.outputs
          .map((o) => o.name)
          .filter((n) => !n.endsWith('.webp'))
          .sort(),
      ).toEqual([...[0, 1, 2, 3].map((l) => `DamagedHelmet-lod${l}.glb`), 'report.json'].sort());
      expect(
        listing.outputs
          .map((o) => o.name)
          .filter((n) => n.endsWith('.webp'))
          .every((n) => /^(turntable|thumbnail)\.webp$/.test(n)),
      ).toBe(true);
    } else {
      expect(job.outcome).toBe('failed');
      expect(job.error?.type).toBe('STORAGE');
      expect(listing.outputs).toEqual([]);
    }
    // Published outputs (storage's jobs/<id>/outputs) hold nothing half-written, and the attempts' scratch is gone.
    const published = path.join(stack.dataDir, 'jobs', jobId, 'outputs');
    expect((existsSync(published) ? readdirSync(published) : []).filter((n) => !/\.(glb|json|webp)$/.test(n))).toEqual([]);
    // The attempt that met the immutable folder could not empty its scratch either: the worker removes it
    // before its next stage. One more job makes that happen.
    const next = await uploadAsset(stack.apiUrl, stack.tokenFor('ana'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(next.status).toBe(202);
    const nextId = ((await next.json()) as { jobId: string }).jobId;
    observer.track('ana', nextId);
    await waitFor(() => observer.jobs.get(nextId)!.outcome !== null, { timeoutMs: 120_000, what: 'the follow-up job' });
    expect(observer.jobs.get(nextId)!.outcome).toBe('completed');
    expect(packageOutputs()).toBeUndefined();
    expect(existsSync(outputs)).toBe(false);
  });
});
