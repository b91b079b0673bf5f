import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { startStack, type ComponentName, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { rssMiB } from './chaos-stack.js';

/** Scale of the run; the figures by default, smaller by env for a quick look on a busy machine. */
const UPLOADS = Number(process.env.LOAD_UPLOADS ?? 200);
const USERS = Number(process.env.LOAD_USERS ?? 20);
const SOCKETS = Number(process.env.LOAD_SOCKETS ?? 1000);
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'terminated']);

/** A bare socket of one user under subscribeAll: which jobs it saw end, and how. */
interface LoadSocket {
  user: string;
  ws: WebSocket;
  finals: Map<string, string>;
  lastSeq: Map<string, number>;
  gaps: number;
  foreign: number;
  /** `queue` frames (places in the HPC line): outside the job's sequence, so not counted in gaps. */
  queueFrames: number;
}

/** pino's numeric levels: 40 warn, 50 error, 60 fatal. */
function levelOf(line: string): number {
  const match = /"level":(\d+)/.exec(line);
  return match ? Number(match[1]) : 0;
}

/**
 * Load: UPLOADS concurrent uploads of TwoCubes.glb by USERS users while SOCKETS sockets (spread evenly over
 * the users, each under subscribeAll) are open on one API process. Every job must be accounted for, every
 * socket must get the final state of each of its own user's jobs and nothing of anyone else's, and the
 * components must log no error. API memory is sampled every 500 ms and reported, not asserted: a size picked
 * on this machine would be a timed-performance assertion in disguise.
 */
describe('load', () => {
  let stack: TestStack;
  const errorLines: string[] = [];
  const warnLines: Record<string, number> = {};
  const warnSamples: string[] = [];
  const sockets: LoadSocket[] = [];

  beforeAll(async () => {
    stack = await startStack({
      env: {
        API_SUBMIT_BURST: String(UPLOADS),
        API_SUBMIT_PER_MINUTE: String(UPLOADS),
        // SOCKETS spread over USERS (50 each by default): above the per-user cap an artist's tabs need.
        API_USER_MAX_SOCKETS: String(Math.ceil(SOCKETS / USERS)),
        LOG_LEVEL: 'warn',
      },
      onLine: (component: ComponentName, line: string) => {
        const level = levelOf(line);
        if (level >= 50) errorLines.push(`[${component}] ${line}`);
        else if (level === 40) {
          warnLines[component] = (warnLines[component] ?? 0) + 1;
          if (warnSamples.length < 5) warnSamples.push(`[${component}] ${line.slice(0, 300)}`);
        }
      },
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await stack?.stop();
  });

  it(`${UPLOADS} concurrent uploads by ${USERS} users with ${SOCKETS} sockets open: every job accounted for, every socket gets its own jobs' end`, async () => {
    const users = Array.from({ length: USERS }, (_, i) => `load${i}`);
    const apiPid = stack.processes.get('api')!.child.pid!;
    const rss: number[] = [rssMiB(apiPid)];
    const sampler = setInterval(() => rss.push(rssMiB(apiPid)), 500);

    for (let i = 0; i < SOCKETS; i++) {
      const user = users[i % USERS]!;
      const ws = new WebSocket(stack.wsUrl, ['asset-farm.v1', `bearer.${stack.tokenFor(user)}`]);
      const socket: LoadSocket = { user, ws, finals: new Map(), lastSeq: new Map(), gaps: 0, foreign: 0, queueFrames: 0 };
      ws.on('message', (data) => {
        const m = JSON.parse(data.toString()) as Record<string, unknown>;
        const jobId = m.jobId as string | undefined;
        if (!jobId) return;
        if (!jobId.startsWith(`asset-${user}-`)) socket.foreign++;
        if (m.type === 'queue') {
          socket.queueFrames++;
          return;
        }
        const seq = m.seq as number;
        if (m.type === 'snapshot') {
          socket.lastSeq.set(jobId, seq);
          const event = m.event as { event: string } | null;
          if (event && TERMINAL.has(event.event)) socket.finals.set(jobId, event.event);
          return;
        }
        const last = socket.lastSeq.get(jobId);
        if (last !== undefined && seq !== last + 1) socket.gaps++;
        socket.lastSeq.set(jobId, seq);
        if (m.type === 'event' && TERMINAL.has(m.event as string)) socket.finals.set(jobId, m.event as string);
      });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribeAll' })));
      sockets.push(socket);
    }
    const subscribed = sockets.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          s.ws.on('message', function onMessage(data) {
            if ((JSON.parse(data.toString()) as { type: string }).type === 'subscribed') {
              s.ws.off('message', onMessage);
              resolve();
            }
          });
          s.ws.once('error', reject);
        }),
    );
    await Promise.all(subscribed);
    const rssWithSockets = rssMiB(apiPid);

    const started = Date.now();
    const submitted = await Promise.all(
      Array.from({ length: UPLOADS }, async (_, i) => {
        const user = users[i % USERS]!;
        // archive: no turntable render per job. The load here is the uploads, sockets and streams; 200 Blender
        // turntables (the default preset's preview stage) outlast the test's 10 minutes on two cores.
        const res = await uploadAsset(stack.apiUrl, stack.tokenFor(user), [path.join(SHARED_ASSETS, 'TwoCubes.glb')], {
          preset: 'archive',
        });
        return { user, status: res.status, jobId: ((await res.json()) as { jobId?: string }).jobId };
      }),
    );
    const accepted = submitted.filter((s) => s.status === 202);
    expect(submitted.map((s) => s.status).filter((s) => s !== 202)).toEqual([]);
    const byUser = new Map<string, string[]>();
    for (const s of accepted) byUser.set(s.user, [...(byUser.get(s.user) ?? []), s.jobId!]);

    // Every socket has the end of every job of its user.
    await waitFor(() => sockets.every((s) => (byUser.get(s.user) ?? []).every((id) => s.finals.has(id))), {
      timeoutMs: 1_500_000,
      what: 'every socket to see the end of each of its jobs',
      intervalMs: 1000,
    });
    const allDoneMs = Date.now() - started;
    clearInterval(sampler);
    const outcomes = new Map<string, string>();
    for (const s of sockets) for (const [id, outcome] of s.finals) outcomes.set(id, outcome);
    const completed = [...outcomes.values()].filter((o) => o === 'completed').length;

    for (const s of sockets) s.ws.close();
    await waitFor(() => sockets.every((s) => s.ws.readyState === WebSocket.CLOSED), { timeoutMs: 30_000, what: 'sockets closed' });
    const rssAfterClose = rssMiB(apiPid);

    // Each job's REST state agrees. The list comes from Temporal's visibility store, which is eventually
    // consistent: a job the stream saw complete may still list as RUNNING for a moment under this load.
    const listAll = async () =>
      (
        await Promise.all(
          users.map(async (user) => {
            const body = (await (
              await fetch(`${stack.apiUrl}/api/jobs?limit=100`, { headers: { authorization: `Bearer ${stack.tokenFor(user)}` } })
            ).json()) as { jobs: { jobId: string; status: string }[] };
            return body.jobs;
          }),
        )
      ).flat();
    let listedJobs = await listAll();
    const listedCompletedAtOnce = listedJobs.filter((j) => j.status === 'COMPLETED').length;
    listedJobs = await waitFor(
      async () => {
        const jobs = await listAll();
        return jobs.filter((j) => j.status === 'COMPLETED').length === UPLOADS && jobs;
      },
      { timeoutMs: 30_000, what: 'the REST list to show every job completed' },
    ).catch(() => listedJobs);

    const figures = {
      uploads: UPLOADS,
      users: USERS,
      sockets: SOCKETS,
      accepted: accepted.length,
      completed,
      failed: [...outcomes.values()].filter((o) => o !== 'completed').length,
      lost: accepted.length - outcomes.size,
      listedByRest: listedJobs.length,
      listedCompleted: listedJobs.filter((j) => j.status === 'COMPLETED').length,
      listedCompletedAtOnce,
      socketGaps: sockets.reduce((n, s) => n + s.gaps, 0),
      foreignMessages: sockets.reduce((n, s) => n + s.foreign, 0),
      queueFrames: sockets.reduce((n, s) => n + s.queueFrames, 0),
      apiRssMiB: { idle: rss[0], withSockets: rssWithSockets, max: Math.max(...rss), afterSocketsClosed: rssAfterClose },
      errorLines: errorLines.length,
      warnLines,
      allDoneMs,
    };
    console.log(`[chaos] load: ${JSON.stringify(figures)}`);
    if (errorLines.length) console.log(errorLines.slice(0, 20).join('\n'));
    if (warnSamples.length) console.log(`[chaos] load warnings (first ${warnSamples.length}):\n${warnSamples.join('\n')}`);
    expect(figures.lost).toBe(0);
    expect(figures.completed).toBe(UPLOADS);
    expect(figures.listedCompleted).toBe(UPLOADS);
    expect(figures.socketGaps).toBe(0);
    expect(figures.foreignMessages).toBe(0);
    expect(errorLines).toEqual([]);
    expect(stack.processes.get('api')!.child.exitCode).toBeNull();
  });
});
