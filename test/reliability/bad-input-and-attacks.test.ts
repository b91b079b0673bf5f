import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { TestSocket } from '../helpers/socket-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

/**
 * Issue 9, the fast set: malformed uploads and attacks on the API, through the real stack (API, both
 * workers, Temporal, Redis). The activity-level corpus is in activities/asset-safety.test.ts; this proves
 * what only the whole stack shows: each bad upload ends as an artist-facing failure (or a 4xx), InvalidAsset
 * is attempted once, the HPC worker survives, and nothing is written outside DATA_DIR.
 */

const UPLOAD_MAX_BYTES = 256 * 1024;
const SUBMIT_BURST = 40;

/** A one-triangle glTF whose JSON the case may alter. */
function gltf(buffer: { uri: string; byteLength: number }, extra: Record<string, unknown> = {}, count = 3): string {
  return JSON.stringify({
    asset: { version: '2.0' },
    buffers: [buffer],
    bufferViews: [{ buffer: 0, byteLength: 36 }],
    accessors: [{ bufferView: 0, componentType: 5126, count, type: 'VEC3', min: [0, 0, 0], max: [1, 1, 0] }],
    meshes: [{ primitives: [{ attributes: { POSITION: 0 } }] }],
    nodes: [{ mesh: 0 }],
    scenes: [{ nodes: [0] }],
    scene: 0,
    ...extra,
  });
}
const dataUri = (bytes: Buffer) => `data:application/octet-stream;base64,${bytes.toString('base64')}`;
const TRIANGLE = Buffer.from(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]).buffer);
const TEXTURED_TRIANGLE = Buffer.concat([TRIANGLE, Buffer.from(new Float32Array([0, 0, 1, 0, 0, 1]).buffer)]);
const NAN_TRIANGLE = Buffer.from(new Float32Array([NaN, 0, 0, 1, NaN, 0, 0, 1, NaN]).buffer);

/** Each case: the files of one upload (name → bytes). */
function corpus(): Record<string, Record<string, string | Buffer>> {
  const glb = readFileSync(path.join(SHARED_ASSETS, 'TwoCubes.glb'));
  const wrongMagic = Buffer.from(glb);
  wrongMagic.write('XLTF', 0, 'latin1');
  const badChunk = Buffer.from(glb);
  badChunk.writeUInt32LE(0x7fff_fff0, 12); // the JSON chunk claims 2 GiB
  const badTotal = Buffer.from(glb);
  badTotal.writeUInt32LE(glb.length * 1000, 8); // header length beyond the file
  // A valid textured triangle (positions, then UVs) whose one image the case supplies.
  const texturedGltf = JSON.stringify({
    ...(JSON.parse(gltf({ uri: dataUri(TEXTURED_TRIANGLE), byteLength: 60 })) as Record<string, unknown>),
    bufferViews: [
      { buffer: 0, byteLength: 36 },
      { buffer: 0, byteOffset: 36, byteLength: 24 },
    ],
    accessors: [
      { bufferView: 0, componentType: 5126, count: 3, type: 'VEC3', min: [0, 0, 0], max: [1, 1, 0] },
      { bufferView: 1, componentType: 5126, count: 3, type: 'VEC2' },
    ],
    images: [{ uri: 'albedo.png' }],
    textures: [{ source: 0 }],
    materials: [{ pbrMetallicRoughness: { baseColorTexture: { index: 0 } } }],
    meshes: [{ primitives: [{ attributes: { POSITION: 0, TEXCOORD_0: 1 }, material: 0 }] }],
  });
  const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return {
    'truncated GLB': { 'truncated.glb': glb.subarray(0, 100) },
    'wrong magic': { 'magic.glb': wrongMagic },
    'chunk length past the end': { 'chunk.glb': badChunk },
    'declared length past the end': { 'length.glb': badTotal },
    'JSON that is not glTF': { 'not-gltf.gltf': JSON.stringify({ hello: 'world', meshes: 'no' }) },
    'not JSON at all': { 'garbage.gltf': 'this is not json {' },
    'huge declared buffer': { 'huge.gltf': gltf({ uri: dataUri(TRIANGLE), byteLength: 2 ** 40 }) },
    'accessor out of bounds': { 'oob.gltf': gltf({ uri: dataUri(TRIANGLE), byteLength: 36 }, {}, 1_000_000) },
    'NaN positions': { 'nan.gltf': gltf({ uri: dataUri(NAN_TRIANGLE), byteLength: 36 }) },
    'an image that is not an image': { 'textured.gltf': texturedGltf, 'albedo.png': 'GIF89a but really text' },
    'a PNG cut after its signature': { 'cut-png.gltf': texturedGltf, 'albedo.png': Buffer.concat([pngSignature, Buffer.from('IHDR')]) },
    'buffer URI ../': { 'parent.gltf': gltf({ uri: '../secret.bin', byteLength: 36 }) },
    'buffer URI absolute path': { 'absolute.gltf': gltf({ uri: '/etc/passwd', byteLength: 36 }) },
    'buffer URI file:': { 'file.gltf': gltf({ uri: 'file:///etc/passwd', byteLength: 36 }) },
    'buffer URI http:': { 'http.gltf': gltf({ uri: 'http://127.0.0.1:9/model.bin', byteLength: 36 }) },
  };
}

interface JobView {
  status: string;
  snapshot: { event: { event: string; message: string; error?: { type: string; message: string; details?: unknown[] } } | null } | null;
}

describe('bad input and attacks through the real API', () => {
  let stack: TestStack;
  let connection: Connection;
  let temporal: Client;
  let corpusDir: string;
  let workerTmp: string;
  let hpcPid: number;
  const sockets: TestSocket[] = [];
  const auth = (user: string) => ({ authorization: `Bearer ${stack.tokenFor(user)}` });

  beforeAll(async () => {
    corpusDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-bad-input-'));
    // The components' own temp folder: anything they write outside DATA_DIR through os.tmpdir() lands here.
    workerTmp = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-component-tmp-'));
    stack = await startStack({
      env: {
        UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES),
        API_SUBMIT_BURST: String(SUBMIT_BURST),
        API_SUBMIT_PER_MINUTE: '1',
        API_CORS_ORIGINS: 'https://tools.studio.example',
        TMPDIR: workerTmp,
      },
    });
    hpcPid = stack.processes.get('worker:hpc')!.child.pid!;
    connection = await Connection.connect({ address: stack.temporalAddress });
    temporal = new Client({ connection, namespace: stack.namespace });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.ws.terminate();
    await connection?.close();
    await stack?.stop();
    rmSync(corpusDir, { recursive: true, force: true });
    rmSync(workerTmp, { recursive: true, force: true });
  });

  it('turns every malformed upload into a failed job with an artist-facing message, attempted once, and the HPC worker lives', async () => {
    // A readable file where "../secret.bin" would lead from the upload: a job that read it could succeed.
    writeFileSync(path.join(stack.dataDir, 'secret.bin'), TRIANGLE);
    const cases = Object.entries(corpus());
    const jobs = await Promise.all(
      cases.map(async ([what, files], i) => {
        const dir = path.join(corpusDir, `case-${i}`);
        mkdirSync(dir);
        const paths = Object.entries(files).map(([name, content]) => {
          writeFileSync(path.join(dir, name), content);
          return path.join(dir, name);
        });
        const res = await uploadAsset(stack.apiUrl, stack.tokenFor('mallory'), paths);
        const body = (await res.json()) as { jobId?: string; error?: { code: string; message: string } };
        return { what, status: res.status, body };
      }),
    );
    const figures: Record<string, string> = {};
    for (const job of jobs) {
      if (job.status !== 202) {
        // Refused at the door is fine too, with a message for the artist.
        expect(job.status, job.what).toBeGreaterThanOrEqual(400);
        expect(job.status, job.what).toBeLessThan(500);
        expect(job.body.error?.message.length, job.what).toBeGreaterThan(10);
        figures[job.what] = `${job.status} ${job.body.error!.code}`;
        continue;
      }
      const jobId = job.body.jobId!;
      const view = await waitFor(
        async () => {
          const res = await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: auth('mallory') });
          const body = (await res.json()) as JobView;
          return body.status !== 'RUNNING' && body.snapshot?.event ? body : undefined;
        },
        { timeoutMs: 60_000, what: `${job.what} to end` },
      );
      expect(view.status, job.what).toBe('FAILED');
      const event = view.snapshot!.event!;
      expect(event.event, job.what).toBe('failed');
      expect(event.error?.type, job.what).toBe('INVALID_ASSET');
      // Words for the artist, not a stack trace.
      expect(event.error!.message.length, job.what).toBeGreaterThan(10);
      expect(event.error!.message, job.what).not.toMatch(/\n\s+at |node_modules|ENOENT|TypeError/);
      figures[job.what] = `FAILED InvalidAsset: ${event.error!.message.slice(0, 80)}`;
      if (job.what.startsWith('buffer URI')) expect(JSON.stringify(event.error!.details), job.what).toContain('URI_NOT_ALLOWED');

      // InvalidAsset is final: every activity of the job ran exactly one attempt (no retry storm).
      const history = await temporal.workflow.getHandle(jobId).fetchHistory();
      const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
      expect(started.length, job.what).toBeGreaterThan(0);
      expect(
        started.map((e) => e.activityTaskStartedEventAttributes!.attempt),
        job.what,
      ).toEqual(started.map(() => 1));
    }
    console.log(
      `[bad-input] ${cases.length} malformed uploads:\n${Object.entries(figures)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join('\n')}`,
    );

    // The one HPC worker process that started with the stack handled them all and is still there.
    const hpc = stack.processes.get('worker:hpc')!;
    expect(hpc.child.pid).toBe(hpcPid);
    expect(hpc.child.exitCode).toBeNull();
    // Nothing went to the components' temp folder, i.e. outside DATA_DIR (tsx-* is the TypeScript loader's
    // own cache, written when the processes start, not by the product).
    expect(readdirSync(workerTmp).filter((name) => !name.startsWith('tsx-'))).toEqual([]);
    // And a good asset still goes through afterwards.
    const good = await uploadAsset(stack.apiUrl, stack.tokenFor('mallory'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(good.status).toBe(202);
    const { jobId } = (await good.json()) as { jobId: string };
    await waitFor(
      async () =>
        ((await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: auth('mallory') })).json()) as JobView).status === 'COMPLETED',
      { timeoutMs: 60_000, what: 'a good asset after the bad ones' },
    );
  });

  it('refuses an upload over UPLOAD_MAX_BYTES with 413, and archives (zip bombs included) are not accepted at all', async () => {
    const dir = path.join(corpusDir, 'limits');
    mkdirSync(dir);
    // Over by a byte to 6 MiB: the client reads the 413 and its reason, never a broken pipe
    // (the API reads what is left of a refused body, up to a bound, before it closes the connection).
    for (const over of [1, 1024, UPLOAD_MAX_BYTES, 6 * 1024 * 1024]) {
      const big = path.join(dir, `big-${over}.glb`);
      writeFileSync(big, Buffer.alloc(UPLOAD_MAX_BYTES + over, 7));
      const res = await uploadAsset(stack.apiUrl, stack.tokenFor('mallory'), [big]);
      expect(res.status, `${over} bytes over`).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_TOO_LARGE');
    }
    // Several files each under the limit but over it together are refused too.
    const half = path.join(dir, 'half.bin');
    writeFileSync(half, Buffer.alloc(Math.ceil(UPLOAD_MAX_BYTES / 2) + 10, 1));
    const first = path.join(dir, 'first.glb');
    writeFileSync(first, randomBytes(4096));
    // The same bytes under two names (two files of one name are refused before anything is stored).
    const otherHalf = path.join(dir, 'other-half.bin');
    writeFileSync(otherHalf, readFileSync(half));
    const together = await uploadAsset(stack.apiUrl, stack.tokenFor('mallory'), [first, half, otherHalf]);
    expect(together.status).toBe(413);
    // The files stored before the limit was crossed belong to no job: they are removed, not left as orphans.
    const blobOf = (file: string) => {
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      return path.join(stack.dataDir, 'uploads', 'sha256', sha.slice(0, 2), sha);
    };
    await waitFor(() => !existsSync(blobOf(first)) && !existsSync(blobOf(half)), {
      timeoutMs: 10_000,
      what: 'the blobs of the refused upload to be removed',
    });
    // A zip (a bomb or not) is never unpacked: without a .glb/.gltf the upload is refused.
    const zip = path.join(dir, 'bomb.zip');
    writeFileSync(zip, Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(2000)]));
    const archive = await uploadAsset(stack.apiUrl, stack.tokenFor('mallory'), [zip]);
    expect(archive.status).toBe(400);
    expect(((await archive.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_NO_MODEL');
    // Refused after it was stored: its blob is removed too.
    await waitFor(() => !existsSync(blobOf(zip)), { timeoutMs: 10_000, what: 'the refused archive’s blob to be removed' });
    // Nothing half-stored: the upload staging folder is empty again.
    const staging = path.join(stack.dataDir, 'uploads', 'tmp');
    await waitFor(() => readdirSync(staging).length === 0, { timeoutMs: 10_000, what: 'the staging folder to be empty' });
  });

  it('answers ids that are not ids with the same 404 on every route, and never a 500', async () => {
    const ids = [
      'not-an-id',
      '..',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      "asset-alice-' OR '1'='1",
      'asset-alice-*',
      'asset-*',
      '%00',
      'a'.repeat(4000),
      `asset-alice-${randomUUID()}%0d%0aSet-Cookie:x=1`,
      encodeURIComponent('{"$ne":null}'),
    ];
    const routes: [string, string][] = [
      ['GET', ''],
      ['POST', '/cancel'],
      ['POST', '/retry'],
      ['GET', '/outputs'],
      ['GET', '/outputs/model.glb'],
      ['GET', '/outputs.zip'],
      ['GET', '/history'],
    ];
    for (const id of ids)
      for (const [method, suffix] of routes) {
        const res = await fetch(`${stack.apiUrl}/api/jobs/${id}${suffix}`, { method, headers: auth('mallory') });
        const body = await res.text();
        expect(res.status, `${method} ${id.slice(0, 40)}${suffix}`).toBe(404);
        expect(['JOB_NOT_FOUND', 'NOT_FOUND'], `${method} ${id.slice(0, 40)}${suffix}`).toContain(
          (JSON.parse(body) as { error: { code: string } }).error.code,
        );
        expect(res.headers.get('set-cookie')).toBeNull();
      }
    // On the socket: a bad id is a BAD_MESSAGE, and the socket goes on working.
    const socket = TestSocket.connect(stack.wsUrl, stack.tokenFor('mallory'));
    sockets.push(socket);
    await socket.opened;
    for (const id of ids.slice(0, 8)) socket.send({ type: 'subscribe', jobId: decodeURIComponent(id.replace(/%(?![0-9a-f]{2})/gi, '')) });
    await waitFor(() => socket.messages.filter((m) => m.type === 'error').length === 8, { timeoutMs: 10_000, what: '8 errors' });
    // A malformed id is a BAD_MESSAGE; a well-formed one that is not yours is JOB_NOT_FOUND, like in REST.
    for (const m of socket.messages) expect(['BAD_MESSAGE', 'JOB_NOT_FOUND']).toContain(m.code);
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed');
  });

  it("refuses missing, wrongly signed, alg:none and expired tokens on every route, and B learns nothing of A's job", async () => {
    const upload = await uploadAsset(stack.apiUrl, stack.tokenFor('alice'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    const { jobId } = (await upload.json()) as { jobId: string };
    const missing = `asset-alice-${randomUUID()}`;
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const tokens: [string, string | null, string][] = [
      ['missing', null, 'AUTH_MISSING'],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp })}.`, 'AUTH_INVALID'],
      ['wrong key', stack.tokenFor('alice').replace(/\.[^.]+$/, '.' + Buffer.alloc(32, 1).toString('base64url')), 'AUTH_INVALID'],
      ['expired', stack.tokenFor('alice', { expiresIn: -10 }), 'AUTH_EXPIRED'],
    ];
    const routes: [string, string][] = [
      ['GET', `/api/jobs/${jobId}`],
      ['POST', `/api/jobs/${jobId}/cancel`],
      ['POST', `/api/jobs/${jobId}/retry`],
      ['GET', `/api/jobs/${jobId}/outputs`],
      ['GET', `/api/jobs/${jobId}/outputs/x.glb`],
      ['GET', `/api/jobs/${jobId}/outputs.zip`],
      ['GET', `/api/jobs/${jobId}/history`],
      ['GET', '/api/jobs'],
      ['POST', '/api/jobs'],
    ];
    for (const [what, token, code] of tokens)
      for (const [method, url] of routes) {
        const res = await fetch(`${stack.apiUrl}${url}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
        expect(res.status, `${what} ${method} ${url}`).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code, `${what} ${method} ${url}`).toBe(code);
      }
    // A valid token of another user: the same 404 body as for a job that does not exist, on every job route.
    for (const [method, url] of routes.filter(([, u]) => u.includes(jobId))) {
      const theirs = await fetch(`${stack.apiUrl}${url}`, { method, headers: auth('bob') });
      const none = await fetch(`${stack.apiUrl}${url.replace(jobId, missing)}`, { method, headers: auth('bob') });
      expect({ status: theirs.status, body: await theirs.text() }, `${method} ${url}`).toEqual({ status: 404, body: await none.text() });
    }
    // And every socket message: subscribe and unsubscribe answer as for a job that does not exist.
    const bob = TestSocket.connect(stack.wsUrl, stack.tokenFor('bob'));
    sockets.push(bob);
    await bob.opened;
    bob.send({ type: 'subscribeAll' });
    await bob.waitFor((m) => m.type === 'subscribed');
    for (const id of [jobId, missing]) {
      bob.send({ type: 'subscribe', jobId: id, lastSeq: 0 });
      bob.send({ type: 'unsubscribe', jobId: id });
    }
    const errors = await Promise.all([jobId, missing].map((id) => bob.waitFor((m) => m.type === 'error' && m.jobId === id)));
    expect(errors.map(({ jobId: _id, ...rest }) => rest)).toEqual([
      { type: 'error', code: 'JOB_NOT_FOUND', message: 'No such job.' },
      { type: 'error', code: 'JOB_NOT_FOUND', message: 'No such job.' },
    ]);
    // Alice's job runs to its end while bob's socket listens: bob hears nothing of it.
    await waitFor(
      async () =>
        ((await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: auth('alice') })).json()) as JobView).status !== 'RUNNING',
      { timeoutMs: 60_000, what: "alice's job to end" },
    );
    expect(bob.messages.filter((m) => m.jobId === jobId && m.type !== 'error')).toEqual([]);
  });

  it('closes a socket sending a frame over 16 KiB with 1009, and one sending malformed frames with 4400, other sockets unharmed', async () => {
    const bystander = TestSocket.connect(stack.wsUrl, stack.tokenFor('mallory'));
    const big = TestSocket.connect(stack.wsUrl, stack.tokenFor('mallory'));
    const noisy = TestSocket.connect(stack.wsUrl, stack.tokenFor('mallory'));
    sockets.push(bystander, big, noisy);
    await Promise.all([bystander.opened, big.opened, noisy.opened]);
    big.send({ type: 'subscribe', jobId: `asset-mallory-${'x'.repeat(17 * 1024)}` });
    expect(await big.closed).toBe(1009);
    const frames: (string | Buffer)[] = [
      'not json',
      '{"type":',
      'null',
      '[]',
      '{"type":"subscribe"}',
      '{"type":"subscribe","jobId":42}',
      '{"type":"subscribe","jobId":"asset-mallory-x","lastSeq":-1}',
      '{"type":"subscribe","jobId":"asset-mallory-x","lastSeq":1e400}',
      '{"type":"hack","__proto__":{"admin":true}}',
      Buffer.from([0xde, 0xad, 0xbe, 0xef]),
    ];
    for (let i = 0; i < 3; i++) for (const frame of frames) noisy.ws.send(frame, { binary: Buffer.isBuffer(frame) });
    expect(await noisy.closed).toBe(4400);
    expect(noisy.messages.filter((m) => m.type === 'error').every((m) => m.code === 'BAD_MESSAGE')).toBe(true);
    bystander.send({ type: 'subscribeAll' });
    await bystander.waitFor((m) => m.type === 'subscribed');
    expect(bystander.closeCode).toBeNull();
    expect(stack.processes.get('api')!.child.exitCode).toBeNull();
  });

  it('limits an upload flood per user with 429 and Retry-After, and another user is not held back', async () => {
    // SUBMIT_BURST empty requests pass the limiter (and fail as uploads with 400); the rest get 429.
    const flood = await Promise.all(
      Array.from({ length: SUBMIT_BURST + 20 }, () =>
        fetch(`${stack.apiUrl}/api/jobs`, { method: 'POST', headers: { ...auth('flooder'), 'content-type': 'text/plain' }, body: 'x' }),
      ),
    );
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 400).length).toBe(SUBMIT_BURST);
    expect(statuses.filter((s) => s === 429).length).toBe(20);
    for (const res of flood.filter((r) => r.status === 429)) {
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_JOBS');
    }
    const other = await uploadAsset(stack.apiUrl, stack.tokenFor('bystander'), [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(other.status).toBe(202);
  });

  it('sends CORS headers only to allowlisted origins', async () => {
    const evil = await fetch(`${stack.apiUrl}/api/jobs`, { headers: { ...auth('mallory'), origin: 'https://evil.example' } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const evilPreflight = await fetch(`${stack.apiUrl}/api/jobs`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evilPreflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(evilPreflight.headers.get('access-control-allow-methods')).toBeNull();
    const friend = await fetch(`${stack.apiUrl}/api/jobs`, { headers: { ...auth('mallory'), origin: 'https://tools.studio.example' } });
    expect(friend.headers.get('access-control-allow-origin')).toBe('https://tools.studio.example');
    const preflight = await fetch(`${stack.apiUrl}/api/jobs`, {
      method: 'OPTIONS',
      headers: { origin: 'https://tools.studio.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    // Security headers on API answers too.
    expect(evil.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
