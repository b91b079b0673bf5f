import { mkdtempSync, rmSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import WebSocket from 'ws';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';
import { HPC_TASK_QUEUE } from '../../common/task-queues.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { waitForPoller } from '../../scripts/lib/temporal-server.js';
import { freePort, WaitAborted, waitFor } from '../../scripts/lib/wait.js';
import { startRedisHa, type RedisHa } from '../helpers/redis-ha.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { expectSnapshotsAgree, reportFigures, WORKLOAD_ASSETS, whenJobsRunning } from './chaos-stack.js';
import { JobObserver } from './job-observer.js';

const JOBS = 20;
const USERS = Array.from({ length: JOBS }, (_, i) => `artist${i}`);
/** Observers each keep one socket per user: 10 × 20 = 200 sockets through the balancer. */
const OBSERVERS = 10;
const SETTLE_MS = 420_000;

/**
 * Two of everything, on loopback (issue 23): HAProxy with the repository's own configuration in front of
 * two API processes, Redis master + replica + three Sentinels, two HPC workers, one orchestrator. With 20
 * jobs running and 200 careful sockets open through the balancer, the Redis master is killed (-9) and a
 * Sentinel promotes the replica, then one API process is killed (-9) and started again. Every job must
 * complete, every socket must end with every stage and the final state of each of its user's jobs, with
 * no gap, no duplicate and nothing of another user's.
 */
describe('two of everything: a balancer, two APIs, Redis with Sentinels, two HPC workers', () => {
  let stack: TestStack;
  let ha: RedisHa;
  let secondApi: ServiceProcess;
  let secondHpc: ServiceProcess;
  let balancer: ServiceProcess;
  let lbUrl: string;
  let haDir: string;
  let secondApiHost: string;
  const observers: JobObserver[] = [];
  let browser: Browser | undefined;

  beforeAll(async () => {
    haDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-redis-ha-'));
    ha = await startRedisHa(haDir);
    // Every process reaches Redis only through the Sentinels (the stack's own plain Redis stays unused).
    stack = await startStack({
      env: { REDIS_SENTINELS: ha.sentinelList, API_SUBMIT_BURST: '100', API_RECONCILE_INTERVAL_MS: '2000', API_DRAIN_SECONDS: '3' },
    });
    const apiPort = await freePort();
    const spawn = (name: string, script: string, env: NodeJS.ProcessEnv = {}) =>
      new ServiceProcess(name, process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, script)], {
        env: { ...stack.env, ...env },
        cwd: PROJECT_ROOT,
      });
    secondApi = spawn('api-2', 'api/main.ts', { API_PORT: String(apiPort) });
    secondApiHost = `127.0.0.1:${apiPort}`;
    secondHpc = spawn('hpc-2', 'worker/hpc.ts');
    const lbPort = await freePort();
    lbUrl = `http://127.0.0.1:${lbPort}`;
    balancer = new ServiceProcess('haproxy', 'haproxy', ['-db', '-f', path.join(PROJECT_ROOT, 'deploy', 'haproxy', 'haproxy.cfg')], {
      env: {
        ...process.env,
        ASSET_FARM_LISTEN: `127.0.0.1:${lbPort}`,
        ASSET_FARM_API_1: new URL(stack.apiUrl).host,
        ASSET_FARM_API_2: secondApiHost,
      },
    });
    await waitForPoller({
      address: stack.temporalAddress,
      namespace: stack.namespace,
      taskQueue: HPC_TASK_QUEUE,
      kind: 'activity',
      pid: secondHpc.child.pid!,
      timeoutMs: 120_000,
      isAlive: () => secondHpc.child.exitCode === null,
    });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok, { timeoutMs: 60_000, what: 'the second API' });
    await waitFor(
      async () => {
        if (balancer.child.exitCode !== null) throw new WaitAborted(`haproxy exited:\n${balancer.tail.join('\n')}`);
        return (await fetch(`${lbUrl}/readyz`)).ok;
      },
      { timeoutMs: 30_000, what: 'the balancer' },
    );
  });
  afterAll(async () => {
    for (const o of observers) o.close();
    await browser?.close();
    await Promise.all([balancer, secondApi, secondHpc].filter(Boolean).map((p) => p.stop(5000)));
    await stack?.stop();
    await ha?.stop();
    if (haDir) rmSync(haDir, { recursive: true, force: true });
  });

  it('kill -9 the Redis master, then one API process, then restart it: every job and every socket ends complete', async () => {
    const wsUrl = `${lbUrl.replace('http', 'ws')}/ws`;
    for (let i = 0; i < OBSERVERS; i++) observers.push(new JobObserver(wsUrl, (user) => stack.tokenFor(user), { fromStart: true }));
    const jobIds = await Promise.all(
      USERS.map(async (user, i) => {
        const asset = WORKLOAD_ASSETS[i % WORKLOAD_ASSETS.length]!;
        const res = await uploadAsset(lbUrl, stack.tokenFor(user), [path.join(SHARED_ASSETS, asset)]);
        expect(res.status, `upload ${i} (${asset}) through the balancer`).toBe(202);
        const { jobId } = (await res.json()) as { jobId: string };
        for (const o of observers) o.track(user, jobId);
        return jobId;
      }),
    );
    expect(new Set(jobIds).size).toBe(JOBS);
    // An artist watches one of their jobs in a real browser, through the balancer, across both kills.
    browser = await launchChromium();
    const page = await (await browser.newContext()).newPage();
    await page.goto(lbUrl);
    await page.getByLabel('User name').fill('artist3');
    await page.getByLabel('User name').press('Enter');
    await page.locator('#connection[data-state="online"]').waitFor();
    const watchedJob = jobIds[3]!;
    const watchedCard = page.locator(`article.job[data-job-id="${watchedJob}"]`);
    await watchedCard.waitFor();
    await whenJobsRunning(observers[0]!, 4);

    const oldMaster = await ha.masterPort();
    const master = ha.servers.get(oldMaster)!;
    process.kill(master.process.child.pid!, 'SIGKILL');
    await master.process.exited;
    ha.servers.delete(oldMaster);
    await waitFor(async () => (await ha.masterPort()) !== oldMaster, { timeoutMs: 60_000, what: 'a Sentinel to promote the replica' });
    const unfinishedAtFailover = jobIds.filter((id) => !observers[0]!.jobs.get(id)!.outcome).length;

    const firstApi = stack.processes.get('api')!;
    process.kill(-firstApi.child.pid!, 'SIGKILL');
    await firstApi.exited;
    const unfinishedAtApiKill = jobIds.filter((id) => !observers[0]!.jobs.get(id)!.outcome).length;
    await stack.startComponent('api');

    await Promise.all(observers.map((o) => o.settled(SETTLE_MS)));
    // The page ends where the careful sockets end: completed, at the job's last seq (it resumed without a gap).
    await page.locator(`article.job[data-job-id="${watchedJob}"][data-phase="completed"]`).waitFor({ timeout: 60_000 });
    expect(Number(await watchedCard.getAttribute('data-seq'))).toBe(observers[0]!.jobs.get(watchedJob)!.lastSeq);
    for (const [i, observer] of observers.entries()) {
      const figures = observer.figures();
      reportFigures(`two of everything, sockets of observer ${i}`, figures, { unfinishedAtFailover, unfinishedAtApiKill });
      expect(figures.completed, `observer ${i}: completed`).toBe(JOBS);
      for (const job of observer.jobs.values()) {
        expect(job.stageCount, job.jobId).toBeGreaterThan(0);
        expect(job.stages.size, `${job.jobId}: stages shown to observer ${i}: ${[...job.stages].join(', ')}`).toBe(job.stageCount);
      }
    }
    // The failover happened while work was under way, and the API kill cut live sockets.
    expect(unfinishedAtFailover).toBeGreaterThan(0);
    expect(observers.reduce((n, o) => n + o.reconnects, 0)).toBeGreaterThanOrEqual(OBSERVERS);
    await expectSnapshotsAgree({ ...stack, apiUrl: lbUrl }, observers[0]!);
  });

  it('a deploy drains: on SIGTERM an API process fails /readyz first, then closes its sockets with 1012', async () => {
    const apiUrl = `http://127.0.0.1:${new URL(`http://${secondApiHost}`).port}`;
    const ws = new WebSocket(`${apiUrl.replace('http', 'ws')}/ws`, ['asset-farm.v1', `bearer.${stack.tokenFor('artist0')}`]);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const drainStarted = Date.now();
    secondApi.child.kill('SIGTERM');
    // While it drains, the process still holds its socket but tells the balancer to route elsewhere.
    const readiness = await waitFor(
      async () => {
        const res = await fetch(`${apiUrl}/readyz`);
        return res.status === 503 ? ((await res.json()) as { status: string }) : false;
      },
      { timeoutMs: 10_000, what: '/readyz to answer 503 while draining' },
    );
    expect(readiness.status).toBe('draining');
    expect(ws.readyState).toBe(WebSocket.OPEN);
    // The balancer marks it down and keeps serving through the other process.
    await waitFor(async () => (await fetch(`${lbUrl}/readyz`)).ok, { timeoutMs: 10_000, what: 'the balancer to keep answering' });
    expect(await closed).toBe(1012);
    // API_DRAIN_SECONDS is 3 in this stack: the close came after the drain, not at the signal.
    expect(Date.now() - drainStarted).toBeGreaterThanOrEqual(3000);
    expect((await secondApi.exited).code).toBe(0);
  });
});
