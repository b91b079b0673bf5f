import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import { BUILTIN_STAGES, planStages } from '../../common/stages.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, type ApiServer } from '../../api/app.js';
import { apiSchema, loadConfig, PROJECT_ROOT } from '../../common/config.js';
import { JobLog, jobKeys } from '../../common/job-log.js';
import { newJobId, type ProcessAssetInput } from '../../common/jobs.js';
import { createLogger } from '../../common/logger.js';
import type { JobEventFields, ProgressFields } from '../../common/progress.js';
import { createRedis } from '../../common/redis.js';
import { ASSET_NAME, ASSET_OWNER, ASSET_PRESET } from '../../common/search-attributes.js';
import { startRedisServer, type RunningRedis } from '../../scripts/lib/redis-server.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { LocalStorage } from '../../storage/local-storage.js';
import { TestSocket } from '../helpers/socket-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

/** The stages the API plans for a DamagedHelmet.glb upload (common/stages.ts). */
const STAGES = planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['DamagedHelmet.glb'] }).map((s) => s.name);

/** A task queue no worker polls: jobs started on it stay RUNNING, and the test publishes their progress itself. */
const PARKED_QUEUE = 'parked-no-worker';

type Message = Record<string, unknown>;

function jobMessages(socket: TestSocket, jobId: string, type?: 'progress' | 'event'): Message[] {
  return socket.messages.filter((m) => m.jobId === jobId && (type ? m.type === type : m.type === 'progress' || m.type === 'event'));
}
const seqsOf = (messages: Message[]) => messages.map((m) => m.seq as number);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('progress streaming: real Redis, Temporal, workers, two API processes and sockets', () => {
  let stack: TestStack;
  let api2: ServiceProcess;
  let api2Url: string;
  let api2Ws: string;
  let temporal: Client;
  let connection: Connection;
  let producer: Redis;
  let jobLog: JobLog;
  let restartedRedis: RunningRedis | null = null;
  let aliceFiles: ProcessAssetInput['files'];
  const sockets: TestSocket[] = [];

  const auth = (user: string) => ({ authorization: `Bearer ${stack.tokenFor(user)}` });
  function connect(user: string, wsUrl = stack.wsUrl): TestSocket {
    const socket = TestSocket.connect(wsUrl, stack.tokenFor(user));
    sockets.push(socket);
    return socket;
  }

  /**
   * Counts the reads of one job's replay log as Redis runs them (MONITOR): Redis-wide command stats would
   * also count the catch-ups other tests' still-open sockets make of their own jobs meanwhile.
   */
  async function streamReads(jobId: string): Promise<{ count(): Promise<number>; stop(): void }> {
    const monitor = await producer.monitor();
    const log = jobKeys(jobId).log;
    let reads = 0;
    let marks = 0;
    const heard = new Set<string>();
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'lrange' && args[1] === log) reads++;
      if (args[0]?.toLowerCase() === 'echo' && args[1]) heard.add(args[1]);
    });
    return {
      async count() {
        // MONITOR reports commands in the order Redis ran them: once it reports this ECHO, it has reported every read before it.
        const mark = `reads-of-${jobId}-${++marks}`;
        await producer.echo(mark);
        await waitFor(() => heard.has(mark), { timeoutMs: 10_000, what: 'MONITOR to report the mark' });
        return reads;
      },
      stop: () => monitor.disconnect(),
    };
  }

  /** A processAsset job for owner that no worker runs: RUNNING until the test ends it. */
  async function parkedJob(owner: string): Promise<string> {
    const jobId = newJobId(owner, randomUUID());
    const input: ProcessAssetInput = { owner, assetName: 'TwoCubes.glb', files: aliceFiles, options: { preset: 'game-ready' } };
    await temporal.workflow.start('processAsset', {
      taskQueue: PARKED_QUEUE,
      workflowId: jobId,
      args: [input],
      typedSearchAttributes: [
        { key: ASSET_OWNER, value: owner },
        { key: ASSET_NAME, value: input.assetName },
        { key: ASSET_PRESET, value: 'game-ready' },
      ],
    });
    return jobId;
  }

  function progress(jobId: string, owner: string, done: number, message = `step ${done}`): ProgressFields {
    return {
      jobId,
      owner,
      stage: 'inspect',
      stageIndex: 0,
      stageCount: 1,
      done,
      total: 1000,
      unit: 'steps',
      percent: done / 10,
      message,
      etaMs: null,
      attempt: 1,
      ts: Date.now(),
    };
  }
  async function publishRange(jobId: string, owner: string, from: number, to: number): Promise<number[]> {
    const seqs = [];
    for (let i = from; i <= to; i++) seqs.push(await jobLog.publishProgress(progress(jobId, owner, i)));
    return seqs;
  }

  beforeAll(async () => {
    stack = await startStack({
      env: { API_RECONCILE_INTERVAL_MS: '1000', API_SUBMIT_BURST: '3', API_SUBMIT_PER_MINUTE: '1' },
    });
    const port = await freePort();
    api2Url = `http://127.0.0.1:${port}`;
    api2Ws = `ws://127.0.0.1:${port}/ws`;
    api2 = new ServiceProcess('api-2', process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'api/main.ts')], {
      env: { ...stack.env, API_PORT: String(port) },
      cwd: PROJECT_ROOT,
    });
    connection = await Connection.connect({ address: stack.temporalAddress });
    temporal = new Client({ connection, namespace: stack.namespace });
    producer = createRedis(stack.redisUrl, 'reader');
    jobLog = new JobLog(producer, { ttlSeconds: 3600 });
    await waitFor(async () => (await fetch(`${api2Url}/readyz`)).ok, { timeoutMs: 60_000, what: 'the second API process' });

    // One real job through the real workers: its input gives the parked jobs real, stored files.
    const res = await uploadAsset(stack.apiUrl, stack.tokenFor('alice'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { jobId: string; files: ProcessAssetInput['files'] };
    aliceFiles = body.files;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.ws.terminate();
    producer?.disconnect();
    await connection?.close();
    await api2?.stop(5000);
    await restartedRedis?.stop();
    await stack?.stop();
  });

  it('streams a real job to its owner: every message from the first, in seq order, none twice', async () => {
    const socket = connect('alice');
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed' && m.all === true);
    const res = await uploadAsset(stack.apiUrl, stack.tokenFor('alice'), [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')]);
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    // As the web page does: subscribe by id too; the overlap with subscribeAll must not duplicate anything.
    socket.send({ type: 'subscribe', jobId });
    const done = await socket.waitFor((m) => m.jobId === jobId && m.event === 'completed', 60_000, 'completed');
    const messages = jobMessages(socket, jobId);
    const snapshot = socket.messages.find((m) => m.type === 'snapshot' && m.jobId === jobId);
    const live = seqsOf(messages);
    // Every seq from 1 to the end exactly once, whether it came live or inside the snapshot.
    expect(new Set(live).size).toBe(live.length);
    expect(live).toEqual([...live].sort((x, y) => x - y));
    const covered = new Set([...live, ...(snapshot ? range(1, snapshot.seq as number) : [])]);
    expect([...covered].sort((x, y) => x - y)).toEqual(range(1, done.seq as number));
    // The subscribe may overtake the first live messages (the job's first two events leave in one
    // publish): those are then summed up by its snapshot, whose event is the last of them.
    const expected = ['started', ...STAGES.flatMap(() => ['stage-started', 'stage-finished']), 'completed'];
    const liveEvents = messages.filter((m) => m.type === 'event');
    const missed = expected.length - liveEvents.length;
    expect(liveEvents.map((m) => m.event)).toEqual(expected.slice(missed));
    if (missed > 0) expect((snapshot?.event as Message | undefined)?.event).toBe(expected[missed - 1]);
    const stageEvents = [...(missed > 0 ? [snapshot?.event as Message] : []), ...liveEvents].filter((m) => m.event === 'stage-started');
    expect(stageEvents.map((m) => m.stage)).toEqual([...STAGES].slice(STAGES.length - stageEvents.length));
    expect(messages.filter((m) => m.type === 'progress').at(-1)).toMatchObject({ stage: STAGES.at(-1), percent: 100, owner: 'alice' });
  });

  it('resumes from lastSeq on another API process with no gap and no duplicate, while updates keep coming', async () => {
    const jobId = await parkedJob('alice');
    await publishRange(jobId, 'alice', 1, 20);
    const first = connect('alice');
    await first.opened;
    first.send({ type: 'subscribe', jobId });
    const snapshot = await first.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId);
    expect(snapshot).toMatchObject({ seq: 20, progress: { seq: 20, done: 20 }, event: null });
    await publishRange(jobId, 'alice', 21, 40);
    await first.waitFor((m) => m.jobId === jobId && m.seq === 40);
    expect(seqsOf(jobMessages(first, jobId))).toEqual(range(21, 40));
    first.close();

    await publishRange(jobId, 'alice', 41, 70); // while no socket is open
    const second = connect('alice', api2Ws);
    await second.opened;
    // Publishing goes on while the subscribe is being served: the race the catch-up must close.
    const publishing = publishRange(jobId, 'alice', 71, 120);
    second.send({ type: 'subscribe', jobId, lastSeq: 40 });
    await publishing;
    await second.waitFor((m) => m.jobId === jobId && m.seq === 120, 30_000, 'seq 120');
    expect(second.messages.some((m) => m.type === 'snapshot')).toBe(false);
    expect(seqsOf(jobMessages(second, jobId))).toEqual(range(41, 120));
    expect(jobMessages(second, jobId).at(-1)).toMatchObject({ done: 120, owner: 'alice' });
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it("keeps each user's jobs to that user: B can neither subscribe to, list, read, cancel, retry nor download A's job", async () => {
    const jobId = await parkedJob('alice');
    const missing = `asset-alice-${randomUUID()}`;
    const bobMissing = `asset-bob-${randomUUID()}`;
    const bob = connect('bob');
    await bob.opened;
    bob.send({ type: 'subscribeAll' });
    await bob.waitFor((m) => m.type === 'subscribed' && m.all === true);
    for (const id of [jobId, missing, bobMissing]) bob.send({ type: 'subscribe', jobId: id });
    const errors = await Promise.all([jobId, missing, bobMissing].map((id) => bob.waitFor((m) => m.type === 'error' && m.jobId === id)));
    // The same answer for another user's job and a job that does not exist.
    expect(errors.map(({ jobId: _id, ...rest }) => rest)).toEqual([
      { type: 'error', code: 'JOB_NOT_FOUND', message: 'No such job.' },
      { type: 'error', code: 'JOB_NOT_FOUND', message: 'No such job.' },
      { type: 'error', code: 'JOB_NOT_FOUND', message: 'No such job.' },
    ]);

    const routes: [string, string][] = [
      ['GET', ''],
      ['POST', '/cancel'],
      ['POST', '/retry'],
      ['GET', '/outputs'],
      ['GET', '/outputs/model.glb'],
      ['GET', '/outputs.zip'],
    ];
    const published = path.join(stack.dataDir, 'to-publish', jobId);
    await mkdir(published, { recursive: true });
    await writeFile(path.join(published, 'model.glb'), 'alice only');
    await new LocalStorage(stack.dataDir).publishOutputs(jobId, published);
    for (const [method, suffix] of routes) {
      const answers = [];
      for (const id of [jobId, missing]) {
        const res = await fetch(`${stack.apiUrl}/api/jobs/${id}${suffix}`, { method, headers: auth('bob') });
        answers.push({ status: res.status, body: await res.text() });
      }
      expect(answers[0], `${method} ${suffix}`).toEqual({ status: 404, body: answers[1]!.body });
      expect(answers[0]!.body).toBe(JSON.stringify({ error: { code: 'JOB_NOT_FOUND', message: 'No such job.' } }));
    }
    const list = (await (await fetch(`${stack.apiUrl}/api/jobs`, { headers: auth('bob') })).json()) as { jobs: Message[] };
    expect(list.jobs.filter((j) => String(j.jobId).startsWith('asset-alice-'))).toEqual([]);
    // Alice's job is still running: bob's cancel did nothing.
    expect((await temporal.workflow.getHandle(jobId).describe()).status.name).toBe('RUNNING');

    await publishRange(jobId, 'alice', 1, 3);
    const alice = connect('alice');
    await alice.opened;
    alice.send({ type: 'subscribe', jobId });
    await alice.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId);
    await publishRange(jobId, 'alice', 4, 5);
    await alice.waitFor((m) => m.jobId === jobId && m.seq === 5);
    expect(bob.messages.filter((m) => String(m.jobId ?? '').startsWith('asset-alice-') && m.type !== 'error')).toEqual([]);
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it('refuses bad, expired, alg:none and query-string tokens with a close code that says why', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const cases: [string | null, number, string][] = [
      [null, 4401, 'no token'],
      [`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp })}.`, 4403, 'alg none'],
      [stack.tokenFor('alice').slice(0, -4) + 'AAAA', 4403, 'bad signature'],
      [stack.tokenFor('alice', { algorithm: 'HS512' }), 4403, 'another algorithm'],
      ['not-a-jwt', 4403, 'garbage'],
      [stack.tokenFor('al/ice'), 4403, 'unsafe subject'],
      [stack.tokenFor('alice', { expiresIn: -10 }), 4419, 'expired'],
    ];
    for (const [token, code, what] of cases) {
      const socket = TestSocket.connect(stack.wsUrl, token);
      sockets.push(socket);
      expect(await socket.closed, what).toBe(code);
    }
    // The query string is never read: a token there is the same as none.
    const query = new TestSocket(new WebSocket(`${stack.wsUrl}?token=${stack.tokenFor('alice')}`, ['asset-farm.v1']));
    expect(await query.closed).toBe(4401);
    // Non-browser clients may use the Authorization header.
    const header = new TestSocket(new WebSocket(stack.wsUrl, ['asset-farm.v1'], { headers: auth('alice') }));
    sockets.push(header);
    await header.opened;
    expect(header.ws.protocol).toBe('asset-farm.v1');
    header.send({ type: 'subscribeAll' });
    await header.waitFor((m) => m.type === 'subscribed');
    // An open socket is closed when its token expires.
    const shortLived = TestSocket.connect(stack.wsUrl, stack.tokenFor('alice', { expiresIn: 2 }));
    sockets.push(shortLived);
    await shortLived.opened;
    expect(await shortLived.closed).toBe(4419);

    const rest = await fetch(`${stack.apiUrl}/api/jobs`, {
      headers: { authorization: `Bearer ${stack.tokenFor('alice', { expiresIn: -10 })}` },
    });
    expect(rest.status).toBe(401);
    expect(((await rest.json()) as { error: { code: string } }).error.code).toBe('AUTH_EXPIRED');
  });

  it('two API processes each relay the same job, each over exactly one Redis subscriber connection', async () => {
    const jobId = await parkedJob('alice');
    const onFirst = [connect('alice'), connect('alice'), connect('alice')];
    const onSecond = [connect('alice', api2Ws), connect('alice', api2Ws), connect('alice', api2Ws)];
    const all = [...onFirst, ...onSecond];
    await Promise.all(all.map((s) => s.opened));
    onFirst[0]!.send({ type: 'subscribeAll' });
    onSecond[0]!.send({ type: 'subscribeAll' });
    for (const s of all) s.send({ type: 'subscribe', jobId });
    await Promise.all(all.map((s) => s.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId)));
    await publishRange(jobId, 'alice', 1, 30);
    for (const s of all) await s.waitFor((m) => m.jobId === jobId && m.seq === 30);
    for (const s of all) expect(seqsOf(jobMessages(s, jobId))).toEqual(range(1, 30));

    // `node --import tsx api/main.ts` runs the API in the spawned process itself, so the child pid names its connections.
    const clients = ((await producer.client('LIST')) as string).split('\n');
    for (const pid of [stack.processes.get('api')!.child.pid!, api2.child.pid!]) {
      const ofProcess = clients.filter((line) => line.includes(`name=asset-farm:`) && line.includes(`:${pid} `));
      const subscribing = ofProcess.filter((line) => /\b(sub|psub)=[1-9]/.test(line));
      expect(subscribing, `subscriber connections of API pid ${pid}`).toHaveLength(1);
      expect(subscribing[0]).toContain(`name=asset-farm:subscriber:${pid} `);
    }
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it('reconciles a terminate from the Temporal UI to every watching socket, once, and on a later subscribe', async () => {
    const jobId = await parkedJob('alice');
    await publishRange(jobId, 'alice', 1, 3);
    const a = connect('alice');
    const b = connect('alice', api2Ws);
    await Promise.all([a.opened, b.opened]);
    for (const s of [a, b]) s.send({ type: 'subscribe', jobId });
    await Promise.all([a, b].map((s) => s.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId)));
    await temporal.workflow.getHandle(jobId).terminate('stopped from the UI');
    for (const s of [a, b]) {
      const event = await s.waitFor((m) => m.jobId === jobId && m.type === 'event', 20_000, 'the terminated event');
      expect(event).toMatchObject({ event: 'terminated', seq: 4, owner: 'alice' });
    }
    // Both API processes noticed it; only one event was published.
    const log = await jobLog.catchUp(jobId, 0);
    expect(log.kind === 'replay' && log.messages.filter((m) => m.type === 'event').map((m) => m.seq)).toEqual([4]);

    // A job terminated while nobody watched gets its event on the next subscribe.
    const quiet = await parkedJob('alice');
    await temporal.workflow.getHandle(quiet).terminate('stopped from the UI');
    a.send({ type: 'subscribe', jobId: quiet });
    const snapshot = await a.waitFor((m) => m.type === 'snapshot' && m.jobId === quiet);
    expect(snapshot).toMatchObject({ seq: 1, event: { event: 'terminated', seq: 1 } });
  });

  it('cancel says cancelling once (the workflow does); retry starts the same input as a new job; both answer 409 when they do not apply', async () => {
    // A user of its own (API_SUBMIT_BURST=3 here). A real workflow whose stages wait on an HPC queue no worker polls: running until cancelled.
    const upload = await uploadAsset(stack.apiUrl, stack.tokenFor('cora'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')], {
      options: JSON.stringify({ hpcQueue: 'parked-hpc' }),
    });
    expect(upload.status).toBe(202);
    const { jobId: pinned } = (await upload.json()) as { jobId: string };
    const socket = connect('cora');
    await socket.opened;
    socket.send({ type: 'subscribe', jobId: pinned });
    const stageStarted = (m: Message) =>
      m.jobId === pinned && (m.event === 'stage-started' || (m.event as { event?: string } | null)?.event === 'stage-started');
    await socket.waitFor(stageStarted, 60_000, 'the pinned job to start its first stage (live or in its snapshot)');
    const early = await fetch(`${stack.apiUrl}/api/jobs/${pinned}/retry`, { method: 'POST', headers: auth('cora') });
    expect(early.status).toBe(409);
    const cancel = await fetch(`${stack.apiUrl}/api/jobs/${pinned}/cancel`, { method: 'POST', headers: auth('cora') });
    expect(cancel.status).toBe(202);
    await socket.waitFor((m) => m.jobId === pinned && m.event === 'cancelling');
    // Its cleanup waits on the parked queue too; a terminate ends it, and the API's `terminated` comes after
    // anything else the job published, so the count below is final.
    await temporal.workflow.getHandle(pinned).terminate('no worker will ever clean it up');
    await socket.waitFor((m) => m.jobId === pinned && m.event === 'terminated', 30_000, 'the reconciled terminated event');
    expect(jobMessages(socket, pinned, 'event').filter((m) => m.event === 'cancelling')).toHaveLength(1);
    const again = await fetch(`${stack.apiUrl}/api/jobs/${pinned}/cancel`, { method: 'POST', headers: auth('cora') });
    expect(again.status).toBe(409);

    const socket2 = connect('alice');
    await socket2.opened;
    const jobId = await parkedJob('alice');
    await temporal.workflow.getHandle(jobId).terminate('a job to retry');
    const retry = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/retry`, { method: 'POST', headers: auth('alice') });
    expect(retry.status).toBe(202);
    const { jobId: retried } = (await retry.json()) as { jobId: string };
    expect(retried).toMatch(/^asset-alice-/);
    expect(retried).not.toBe(jobId);
    const inputOf = async (id: string) => {
      const history = await temporal.workflow.getHandle(id).fetchHistory();
      return JSON.parse(
        Buffer.from(history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data ?? []).toString(),
      ) as Record<string, unknown>;
    };
    // The same upload and options; the stage plan is today's registry's (a retry is a new job), whatever the first had.
    const { plan, ...retriedInput } = await inputOf(retried);
    expect(retriedInput).toEqual(await inputOf(jobId));
    expect(plan).toEqual(planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] }));
    // The retried job really runs on the workers, and finishes.
    socket2.send({ type: 'subscribe', jobId: retried });
    await socket2.waitFor(
      (m) => m.jobId === retried && (m.event === 'completed' || (m.event as { event?: string } | null)?.event === 'completed'),
      60_000,
      'the retried job to complete (live or in its snapshot)',
    );
    const done = await fetch(`${stack.apiUrl}/api/jobs/${retried}/retry`, { method: 'POST', headers: auth('alice') });
    expect(done.status).toBe(409);
  });

  it('lists, downloads and zips outputs, and no name reaches outside the job’s outputs', async () => {
    const jobId = await parkedJob('alice');
    // What a worker's package stage publishes from its scratch folder; a symlink there is never published.
    const dir = path.join(stack.dataDir, 'to-publish', jobId);
    await mkdir(path.join(dir, 'lod'), { recursive: true });
    await writeFile(path.join(dir, 'model.glb'), 'glb bytes');
    await writeFile(path.join(dir, 'lod', 'lod1.glb'), 'lod bytes');
    await writeFile(path.join(stack.dataDir, 'secret.txt'), 'not yours');
    await symlink(path.join(stack.dataDir, 'secret.txt'), path.join(dir, 'link.txt'));
    await new LocalStorage(stack.dataDir).publishOutputs(jobId, dir);
    const base = `${stack.apiUrl}/api/jobs/${jobId}/outputs`;
    const list = (await (await fetch(base, { headers: auth('alice') })).json()) as { outputs: { name: string; size: number }[] };
    expect(list.outputs.map((o) => [o.name, o.size])).toEqual([
      ['lod/lod1.glb', 9],
      ['model.glb', 9],
    ]);
    const file = await fetch(`${base}/lod/lod1.glb`, { headers: auth('alice') });
    expect(file.status).toBe(200);
    expect(file.headers.get('content-disposition')).toContain('lod1.glb');
    expect(await file.text()).toBe('lod bytes');
    for (const bad of [
      'link.txt',
      '..%2F..%2Fsecret.txt',
      '%2E%2E/%2E%2E/secret.txt',
      'lod/..%2F..%2F..%2Fsecret.txt',
      'nope.glb',
      '%00',
    ]) {
      const res = await fetch(`${base}/${bad}`, { headers: auth('alice') });
      expect(res.status, bad).toBe(404);
      expect(await res.text()).not.toContain('not yours');
    }
    const zip = Buffer.from(await (await fetch(`${base}.zip`, { headers: auth('alice') })).arrayBuffer());
    expect(zip.subarray(0, 2).toString()).toBe('PK');
    expect(zip.includes('model.glb')).toBe(true);
    expect(zip.includes('lod/lod1.glb')).toBe(true);
    expect(zip.includes('link.txt')).toBe(false);

    // The original upload, to its owner: what the page's "before" view loads after a reload.
    const inputs = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/inputs`, { headers: auth('alice') })).json()) as {
      model: string;
      inputs: { name: string; size: number }[];
    };
    expect(inputs.model).toBe('TwoCubes.glb');
    expect(inputs.inputs).toEqual(aliceFiles.map((f) => ({ name: f.name, size: f.size })));
    const original = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/inputs/TwoCubes.glb`, { headers: auth('alice') });
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(await readFile(path.join(SHARED_ASSETS, 'TwoCubes.glb')))).toBe(true);
    for (const [user, name] of [
      ['bob', 'TwoCubes.glb'],
      ['alice', 'other.glb'],
      ['alice', '..%2F..%2Fsecret.txt'],
    ] as const) {
      const res = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/inputs/${name}`, { headers: auth(user) });
      expect(res.status, `${user} ${name}`).toBe(404);
    }
    await temporal.workflow.getHandle(jobId).terminate('test done');

    // A job whose outputs expired (or never came): empty, 404, and reading never creates anything.
    const expired = await parkedJob('alice');
    const expiredBase = `${stack.apiUrl}/api/jobs/${expired}/outputs`;
    expect(((await (await fetch(expiredBase, { headers: auth('alice') })).json()) as { outputs: unknown[] }).outputs).toEqual([]);
    expect((await fetch(`${expiredBase}.zip`, { headers: auth('alice') })).status).toBe(404);
    expect((await fetch(`${expiredBase}/model.glb`, { headers: auth('alice') })).status).toBe(404);
    expect(existsSync(path.join(stack.dataDir, 'jobs', expired, 'outputs'))).toBe(false);
    await temporal.workflow.getHandle(expired).terminate('test done');
  });

  it('lists my jobs newest first, a page at a time', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await parkedJob('dave'));
    const page = async (query: string) =>
      (await (await fetch(`${stack.apiUrl}/api/jobs?${query}`, { headers: auth('dave') })).json()) as {
        jobs: { jobId: string }[];
        nextBefore: string | null;
      };
    const first = await waitFor(
      async () => {
        const p = await page('limit=2');
        return p.nextBefore !== null && p;
      },
      { timeoutMs: 20_000, what: 'dave’s jobs in visibility' },
    );
    const second = await page(`limit=2&before=${encodeURIComponent(first.nextBefore!)}`);
    expect([...first.jobs, ...second.jobs].map((j) => j.jobId)).toEqual([...ids].reverse());
    expect(second.nextBefore).toBeNull();
    expect((await fetch(`${stack.apiUrl}/api/jobs?before=garbage`, { headers: auth('dave') })).status).toBe(400);
    for (const id of ids) await temporal.workflow.getHandle(id).terminate('test done');
  });

  it('lists a job reset in Temporal once, as its current run', async () => {
    // A real workflow waiting on an HPC queue no worker polls: it has workflow tasks to reset to.
    const upload = await uploadAsset(stack.apiUrl, stack.tokenFor('rita'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')], {
      options: JSON.stringify({ hpcQueue: 'parked-hpc' }),
    });
    const { jobId } = (await upload.json()) as { jobId: string };
    const handle = temporal.workflow.getHandle(jobId);
    const resetPoint = async () =>
      waitFor(async () => ((await handle.fetchHistory()).events ?? []).find((e) => e.workflowTaskCompletedEventAttributes), {
        timeoutMs: 30_000,
        what: 'a completed workflow task',
      });
    let runId = (await handle.describe()).runId;
    for (let reset = 0; reset < 2; reset++) {
      ({ runId } = await temporal.workflowService.resetWorkflowExecution({
        namespace: stack.namespace,
        workflowExecution: { workflowId: jobId, runId },
        reason: 'test: reset',
        workflowTaskFinishEventId: (await resetPoint()).eventId,
        requestId: randomUUID(),
      }));
    }
    // Temporal's own list has a row per run: three for this job.
    await waitFor(
      async () => {
        let rows = 0;
        for await (const info of temporal.workflow.list({ query: `WorkflowId = "${jobId}"` })) rows += info.workflowId === jobId ? 1 : 0;
        return rows === 3;
      },
      { timeoutMs: 30_000, what: 'three runs in visibility' },
    );
    const list = (await (await fetch(`${stack.apiUrl}/api/jobs`, { headers: auth('rita') })).json()) as {
      jobs: { jobId: string; status: string }[];
    };
    expect(list.jobs.filter((j) => j.jobId === jobId)).toEqual([expect.objectContaining({ jobId, status: 'RUNNING' })]);
    expect(list.jobs).toHaveLength(1);
    await handle.terminate('test done');
  });

  it('sends security headers, limits JSON bodies and rate-limits uploads per user', async () => {
    const page = await fetch(`${stack.apiUrl}/`);
    const csp = page.headers.get('content-security-policy') ?? '';
    // Scripts only from the page's own files (plus hashed inline ones, if a page has any); never inline at large.
    expect(csp).toMatch(/script-src 'self' 'wasm-unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')*;/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toContain(`connect-src 'self' blob: data: ${stack.wsUrl.replace('/ws', '')}`);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const big = await fetch(`${stack.apiUrl}/api/auth/dev-login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'x'.repeat(20_000) }),
    });
    expect(big.status).toBe(413);
    // API_SUBMIT_BURST=3 for this stack: three requests pass the limiter (and fail as uploads), the fourth waits.
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${stack.apiUrl}/api/jobs`, {
        method: 'POST',
        headers: { ...auth('erin'), 'content-type': 'text/plain' },
        body: 'x',
      });
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
    // Another user has a bucket of their own.
    expect(
      (await fetch(`${stack.apiUrl}/api/jobs`, { method: 'POST', headers: { ...auth('frank'), 'content-type': 'text/plain' }, body: 'x' }))
        .status,
    ).toBe(400);
  });

  /** An API in this test process, on the stack's Redis and Temporal, so a test can look at its socket hub. */
  async function inProcessApi(pingIntervalMs: number) {
    const config = loadConfig(apiSchema, { ...stack.env, API_PORT: '0', LOG_LEVEL: 'silent' });
    const reader = createRedis(stack.redisUrl, 'reader');
    const subscriber = createRedis(stack.redisUrl, 'subscriber');
    const api: ApiServer = createApiServer({
      config,
      temporal,
      redis: reader,
      subscriber,
      storage: new LocalStorage(stack.dataDir),
      log: createLogger('api-test', 'silent'),
      socketOptions: { pingIntervalMs },
    });
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    return {
      api,
      wsUrl: `ws://127.0.0.1:${(api.server.address() as AddressInfo).port}/ws`,
      async close() {
        await api.close();
        reader.disconnect();
        subscriber.disconnect();
      },
    };
  }

  it('drops a socket that stops answering pings', async () => {
    const local = await inProcessApi(200);
    try {
      const silent = new TestSocket(
        new WebSocket(local.wsUrl, ['asset-farm.v1', `bearer.${stack.tokenFor('alice')}`], { autoPong: false }),
      );
      const healthy = new TestSocket(new WebSocket(local.wsUrl, ['asset-farm.v1', `bearer.${stack.tokenFor('alice')}`]));
      sockets.push(silent, healthy);
      await Promise.all([silent.opened, healthy.opened]);
      expect(await silent.closed).toBe(1006); // terminated, no close frame
      await expect.poll(() => local.api.hub.stats().sockets).toBe(1);
      expect(healthy.closeCode).toBeNull();
    } finally {
      await local.close();
    }
  });

  it('a slow socket gets coalesced progress with bounded buffers, every event, and the latest state once it reads', async () => {
    const local = await inProcessApi(3_600_000);
    const inProcess = local.api;
    const port = new URL(local.wsUrl).port;
    try {
      // A user of its own: no other test's subscribeAll socket has to take the flood too.
      const jobId = await parkedJob('sam');
      const socket = connect('sam', `ws://127.0.0.1:${port}/ws`);
      await socket.opened;
      socket.send({ type: 'subscribe', jobId });
      await socket.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId);

      // Stop reading: the server's writes pile up once the kernel buffers are full.
      const raw = (socket.ws as unknown as { _socket: net.Socket })._socket;
      raw.pause();
      const padding = 'x'.repeat(3000);
      let maxBuffered = 0;
      const total = 5000; // about 15 MB of progress, far beyond the loopback buffers
      for (let batch = 0; batch < total; batch += 250) {
        // 250 at a time: ioredis pipelines them, and in between the hub's queue is sampled.
        await Promise.all(
          range(batch + 1, batch + 250).map((i) => jobLog.publishProgress(progress(jobId, 'sam', i % 1000, `step ${i} ${padding}`))),
        );
        if (batch + 250 === total / 2) {
          const event: JobEventFields = {
            jobId,
            owner: 'sam',
            event: 'stage-finished',
            stage: 'inspect',
            message: 'half way',
            ts: Date.now(),
          };
          await jobLog.publishEvent(event);
        }
        maxBuffered = Math.max(maxBuffered, inProcess.hub.stats().maxBufferedBytes);
      }
      await jobLog.publishProgress(progress(jobId, 'sam', 999, 'the latest'));
      maxBuffered = Math.max(maxBuffered, inProcess.hub.stats().maxBufferedBytes);
      // It did get slow (progress was held back), and the queue stayed near the threshold, not 20 MB.
      expect(maxBuffered).toBeGreaterThan(64 * 1024);
      expect(maxBuffered).toBeLessThan(1024 * 1024);

      raw.resume();
      const latest = await socket.waitFor((m) => m.jobId === jobId && m.message === 'the latest', 60_000, 'the latest progress');
      expect(latest.seq).toBe(total + 2);
      const received = jobMessages(socket, jobId);
      expect(received.filter((m) => m.type === 'event').map((m) => m.message)).toEqual(['half way']);
      expect(received.length).toBeLessThan(total);
      const seqs = seqsOf(received);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      await temporal.workflow.getHandle(jobId).terminate('test done');
    } finally {
      await local.close();
    }
  });

  it('a job many sockets of one user first see mid-stream is caught up with one read of its stream, not one per socket', async () => {
    const jobId = await parkedJob('carol');
    await publishRange(jobId, 'carol', 1, 5);
    const many = Array.from({ length: 20 }, () => connect('carol'));
    await Promise.all(many.map((s) => s.opened));
    for (const s of many) s.send({ type: 'subscribeAll' });
    await Promise.all(many.map((s) => s.waitFor((m) => m.type === 'subscribed' && m.all === true)));
    const reads = await streamReads(jobId);
    try {
      // Seq 6 is the first these sockets hear of the job: each needs the state so far before it.
      await publishRange(jobId, 'carol', 6, 6);
      await Promise.all(many.map((s) => s.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId)));
      for (const s of many) expect(s.messages.filter((m) => m.jobId === jobId).map((m) => [m.type, m.seq])).toEqual([['snapshot', 6]]);
      expect(await reads.count()).toBe(1);
      await publishRange(jobId, 'carol', 7, 7);
      await Promise.all(many.map((s) => s.waitFor((m) => m.jobId === jobId && m.seq === 7)));
      expect(await reads.count()).toBe(1);
    } finally {
      reads.stop();
    }
    for (const s of many) s.ws.close();
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it('resumes the stream after a Redis restart, with the seq kept; a client ahead of lost data gets a reset snapshot', async () => {
    const jobId = await parkedJob('alice');
    const a = connect('alice');
    const b = connect('alice', api2Ws);
    await Promise.all([a.opened, b.opened]);
    for (const s of [a, b]) s.send({ type: 'subscribe', jobId });
    await Promise.all([a, b].map((s) => s.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId)));
    await publishRange(jobId, 'alice', 1, 10);
    await Promise.all([a, b].map((s) => s.waitFor((m) => m.jobId === jobId && m.seq === 10)));

    await stack.redis.process.stop();
    restartedRedis = await startRedisServer({ port: stack.redis.port, dir: path.join(stack.dataDir, 'redis') });
    await waitFor(async () => (await producer.ping()) === 'PONG', { timeoutMs: 20_000, what: 'the producer to reconnect' });
    // The append-only file kept the job's seq: the stream continues at 11.
    expect(await publishRange(jobId, 'alice', 11, 20)).toEqual(range(11, 20));
    for (const s of [a, b]) {
      await s.waitFor((m) => m.jobId === jobId && m.seq === 20, 30_000, 'seq 20 after the restart');
      expect(seqsOf(jobMessages(s, jobId))).toEqual(range(1, 20));
    }
    // The sockets stayed open throughout.
    expect([a.closeCode, b.closeCode]).toEqual([null, null]);

    // Redis loses everything (a restart without persistence): a client at seq 20 is told to start over.
    await producer.flushall();
    await jobLog.publishProgress(progress(jobId, 'alice', 1, 'after the loss'));
    const c = connect('alice');
    await c.opened;
    c.send({ type: 'subscribe', jobId, lastSeq: 20 });
    const reset = await c.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId);
    expect(reset).toMatchObject({ reset: true, seq: 1, progress: { message: 'after the loss' } });
    await publishRange(jobId, 'alice', 2, 3);
    await c.waitFor((m) => m.jobId === jobId && m.seq === 3);
    expect(seqsOf(jobMessages(c, jobId))).toEqual([2, 3]);
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it('an API process killed mid-job: its client reconnects to the other one with lastSeq and misses nothing', async () => {
    const jobId = await parkedJob('alice');
    const socket = connect('alice', api2Ws);
    await socket.opened;
    socket.send({ type: 'subscribe', jobId });
    await socket.waitFor((m) => m.type === 'snapshot' && m.jobId === jobId);
    await publishRange(jobId, 'alice', 1, 10);
    await socket.waitFor((m) => m.jobId === jobId && m.seq === 10);
    api2.child.kill('SIGKILL');
    expect(await socket.closed).toBe(1006);
    await publishRange(jobId, 'alice', 11, 15);
    const lastSeq = Math.max(...seqsOf(jobMessages(socket, jobId)));
    const again = connect('alice');
    await again.opened;
    again.send({ type: 'subscribe', jobId, lastSeq });
    await publishRange(jobId, 'alice', 16, 20);
    await again.waitFor((m) => m.jobId === jobId && m.seq === 20);
    expect([...seqsOf(jobMessages(socket, jobId)), ...seqsOf(jobMessages(again, jobId))]).toEqual(range(1, 20));
    await temporal.workflow.getHandle(jobId).terminate('test done');
  });
});
