import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../bench/assets/seeded-random.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { newJobId, type ProcessAssetInput } from '../../common/jobs.js';
import { CLOSE_CODES } from '../../common/socket-protocol.js';
import { ASSET_NAME, ASSET_OWNER, ASSET_PRESET } from '../../common/search-attributes.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { sampleValue } from '../helpers/prometheus.js';
import { TestSocket } from '../helpers/socket-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';

/**
 * Issue 18 item 2 and 5: what one user can do to everyone else, through the real API processes on a real
 * Redis and Temporal (no workers: the jobs here are parked on a queue nobody polls). Every assertion is
 * on a bound the code enforces (a count, a cap, a close code, a 429), never on a timing.
 */

const PARKED_QUEUE = 'parked-no-worker';
const MESSAGES_PER_10S = 200;
const MAX_SOCKETS = 5;
const SOCKET_SUBSCRIPTIONS = 3;
const USER_SUBSCRIPTIONS = 5;
const SUBMIT_BURST = 4;
const LOGINS_PER_MINUTE = 3;
const FILES: ProcessAssetInput['files'] = [{ name: 'TwoCubes.glb', sha256: 'a'.repeat(64), size: 1 }];

describe('bounds on what one user can do to the API', () => {
  let stack: TestStack;
  let api2: ServiceProcess;
  let api2Url: string;
  let connection: Connection;
  let temporal: Client;
  const sockets: TestSocket[] = [];
  const auth = (user: string) => ({ authorization: `Bearer ${stack.tokenFor(user)}` });
  const connect = (user: string) => {
    const socket = TestSocket.connect(stack.wsUrl, stack.tokenFor(user));
    sockets.push(socket);
    return socket;
  };
  let metricsUrl: string;
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(await (await fetch(metricsUrl)).text(), name, labels) ?? 0;

  async function parkedJob(owner: string): Promise<string> {
    const jobId = newJobId(owner, randomUUID());
    const input: ProcessAssetInput = { owner, assetName: 'TwoCubes.glb', files: FILES, options: { preset: 'game-ready' } };
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

  beforeAll(async () => {
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    stack = await startStack({
      components: ['api'],
      componentEnv: { api: { API_METRICS_PORT: String(metricsPort) } },
      env: {
        API_SOCKET_MESSAGES_PER_10S: String(MESSAGES_PER_10S),
        API_USER_MAX_SOCKETS: String(MAX_SOCKETS),
        API_SOCKET_MAX_SUBSCRIPTIONS: String(SOCKET_SUBSCRIPTIONS),
        API_USER_MAX_SUBSCRIPTIONS: String(USER_SUBSCRIPTIONS),
        API_SUBMIT_BURST: String(SUBMIT_BURST),
        API_SUBMIT_PER_MINUTE: '1',
        API_LOGIN_PER_MINUTE: String(LOGINS_PER_MINUTE),
      },
    });
    const port = await freePort();
    api2Url = `http://127.0.0.1:${port}`;
    api2 = new ServiceProcess('api-2', process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'api/main.ts')], {
      env: { ...stack.env, API_PORT: String(port), API_METRICS_PORT: '0' },
      cwd: PROJECT_ROOT,
    });
    connection = await Connection.connect({ address: stack.temporalAddress });
    temporal = new Client({ connection, namespace: stack.namespace });
    await waitFor(async () => (await fetch(`${api2Url}/readyz`)).ok, { timeoutMs: 60_000, what: 'the second API process' });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await connection?.close();
    await api2?.stop(5000);
    await stack?.stop();
  });

  it('a flood of 10,000 subscribes for random ids from one socket is cut off at the rate, and another user is served', async () => {
    const bystanderJob = await parkedJob('bystander');
    const checksBefore = await metric('asset_farm_api_ownership_checks_total');
    const flooder = connect('flooder');
    await flooder.opened;
    const random = seededRandom(18_2);
    const owners = ['flooder', 'bystander', 'alice', 'flooder-x'];
    for (let i = 0; i < 10_000; i++) {
      const owner = owners[Math.floor(random() * owners.length)]!;
      flooder.send({ type: 'subscribe', jobId: `asset-${owner}-${Math.floor(random() * 2 ** 52).toString(36)}` });
    }
    expect(await flooder.closed).toBe(CLOSE_CODES.TOO_MANY_MESSAGES);

    // Meanwhile another user gets their list and their job's stream from the same process.
    // (Polled only because Temporal's visibility takes a moment to list a new workflow.)
    await waitFor(
      async () => {
        const list = await fetch(`${stack.apiUrl}/api/jobs`, { headers: auth('bystander') });
        expect(list.status).toBe(200);
        return ((await list.json()) as { jobs: { jobId: string }[] }).jobs.some((j) => j.jobId === bystanderJob);
      },
      { timeoutMs: 30_000, what: "the bystander's job in their list" },
    );
    const bystander = connect('bystander');
    await bystander.opened;
    bystander.send({ type: 'subscribe', jobId: bystanderJob });
    await bystander.waitFor((m) => m.type === 'snapshot' && m.jobId === bystanderJob);

    // What the flood cost: at most one ownership check per admitted message, none of the rest read anything.
    const checks = (await metric('asset_farm_api_ownership_checks_total')) - checksBefore;
    const answered = flooder.messages.filter((m) => m.type === 'error');
    console.log(
      `[api-bounds] flood: 10000 sent, closed ${flooder.closeCode} after ${MESSAGES_PER_10S}; ${checks} ownership checks; ` +
        `${answered.length} answers (${answered.filter((m) => m.code === 'UNAVAILABLE').length} UNAVAILABLE busy)`,
    );
    expect(checks).toBeGreaterThan(0);
    expect(checks).toBeLessThanOrEqual(MESSAGES_PER_10S);
    expect(answered.length).toBeLessThanOrEqual(MESSAGES_PER_10S);
    for (const m of answered) expect(['JOB_NOT_FOUND', 'UNAVAILABLE']).toContain(m.code);
    expect(await metric('asset_farm_api_socket_refusals_total', { reason: 'messages' })).toBeGreaterThanOrEqual(1);
    await temporal.workflow.getHandle(bystanderJob).terminate('test done');
  });

  it('refuses one socket more than the per-user cap with 4430; other users still connect', async () => {
    const crowd = Array.from({ length: MAX_SOCKETS + 3 }, () => connect('crowd'));
    await Promise.all(crowd.map((s) => s.opened));
    await waitFor(() => crowd.filter((s) => s.closeCode !== null).length === 3, { timeoutMs: 10_000, what: 'three refused sockets' });
    expect(crowd.filter((s) => s.closeCode === CLOSE_CODES.TOO_MANY_SOCKETS)).toHaveLength(3);
    // The open ones work, and a freed slot can be taken again.
    const open = crowd.filter((s) => s.closeCode === null);
    expect(open).toHaveLength(MAX_SOCKETS);
    open[0]!.send({ type: 'subscribeAll' });
    await open[0]!.waitFor((m) => m.type === 'subscribed');
    open[0]!.close();
    await open[0]!.closed;
    const again = connect('crowd');
    await again.opened;
    again.send({ type: 'subscribeAll' });
    await again.waitFor((m) => m.type === 'subscribed');
    expect(again.closeCode).toBeNull();
    const other = connect('someone-else');
    await other.opened;
    other.send({ type: 'subscribeAll' });
    await other.waitFor((m) => m.type === 'subscribed');
    for (const s of [...open, again, other]) s.close();
  });

  it('caps subscriptions per socket and per user with TOO_MANY_SUBSCRIPTIONS', async () => {
    const jobs = await Promise.all(Array.from({ length: USER_SUBSCRIPTIONS + 2 }, () => parkedJob('collector')));
    const a = connect('collector');
    const b = connect('collector');
    await Promise.all([a.opened, b.opened]);
    const outcome = async (socket: TestSocket, jobId: string) =>
      (await socket.waitFor((m) => m.jobId === jobId && (m.type === 'subscribed' || m.type === 'error'))).type === 'subscribed'
        ? 'subscribed'
        : String((socket.messages.find((m) => m.jobId === jobId && m.type === 'error') as { code: string }).code);
    // Sent at once, checked concurrently: which one is refused is a race, how many is not.
    const tally = (outcomes: string[]) => [...outcomes].sort().join(',');
    // Socket a: three, then its own cap.
    const firstFour = jobs.slice(0, SOCKET_SUBSCRIPTIONS + 1);
    for (const jobId of firstFour) a.send({ type: 'subscribe', jobId });
    const onA = await Promise.all(firstFour.map((jobId) => outcome(a, jobId)));
    expect(tally(onA)).toBe('TOO_MANY_SUBSCRIPTIONS,subscribed,subscribed,subscribed');
    // Socket b: two more reach the user's cap of five, the next is refused.
    const rest = jobs.slice(SOCKET_SUBSCRIPTIONS + 1);
    for (const jobId of rest) b.send({ type: 'subscribe', jobId });
    const onB = await Promise.all(rest.map((jobId) => outcome(b, jobId)));
    expect(tally(onB)).toBe('TOO_MANY_SUBSCRIPTIONS,subscribed,subscribed');
    const followedByA = firstFour.filter((_, i) => onA[i] === 'subscribed');
    const refusedOnB = rest.find((_, i) => onB[i] !== 'subscribed')!;
    // Subscribing again to a job already followed is not one more.
    a.send({ type: 'subscribe', jobId: followedByA[0], lastSeq: 0 });
    await waitFor(() => a.messages.filter((m) => m.jobId === followedByA[0] && m.type === 'subscribed').length === 2, {
      timeoutMs: 10_000,
      what: 'the repeated subscribe',
    });
    // Unsubscribing frees a place (the subscribeAll answered after it shows it was handled: a socket's
    // messages are taken in order).
    a.send({ type: 'unsubscribe', jobId: followedByA[0] });
    a.send({ type: 'subscribeAll' });
    await a.waitFor((m) => m.type === 'subscribed' && m.all === true);
    b.messages.length = 0;
    b.send({ type: 'subscribe', jobId: refusedOnB });
    expect(await outcome(b, refusedOnB)).toBe('subscribed');
    for (const jobId of jobs) await temporal.workflow.getHandle(jobId).terminate('test done');
  });

  it('takes retries from the upload limit, shared by two API processes on one Redis', async () => {
    const failed = await parkedJob('retrier');
    await temporal.workflow.getHandle(failed).terminate('a job to retry');
    const statuses: number[] = [];
    // Alternating between the two processes: a per-process limit would let 2 × SUBMIT_BURST through.
    for (let i = 0; i < SUBMIT_BURST * 2; i++) {
      const base = i % 2 === 0 ? stack.apiUrl : api2Url;
      const res = await fetch(`${base}/api/jobs/${failed}/retry`, { method: 'POST', headers: auth('retrier') });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_JOBS');
      } else {
        const { jobId } = (await res.json()) as { jobId: string };
        await temporal.workflow.getHandle(jobId).terminate('test done');
      }
    }
    expect(statuses).toEqual([...Array<number>(SUBMIT_BURST).fill(202), ...Array<number>(SUBMIT_BURST).fill(429)]);
    // Retries and uploads share the limit: an upload is refused too, before its body is read.
    const upload = await fetch(`${api2Url}/api/jobs`, {
      method: 'POST',
      headers: { ...auth('retrier'), 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(upload.status).toBe(429);
    // Another user has a limit of their own.
    const other = await fetch(`${stack.apiUrl}/api/jobs`, {
      method: 'POST',
      headers: { ...auth('someone'), 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(other.status).toBe(400);
  });

  it('limits dev logins per address across both API processes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LOGINS_PER_MINUTE + 2; i++) {
      const res = await fetch(`${i % 2 === 0 ? stack.apiUrl : api2Url}/api/auth/dev-login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: `u${i}` }),
      });
      statuses.push(res.status);
      if (res.status === 429) expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_LOGINS');
    }
    expect(statuses).toEqual([...Array<number>(LOGINS_PER_MINUTE).fill(200), 429, 429]);
  });
});
