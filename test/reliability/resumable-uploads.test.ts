import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, type ApiServer } from '../../api/app.js';
import { apiSchema, loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { createRedis } from '../../common/redis.js';
import { uploadIdOf } from '../../common/uploads.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createStorage, s3ClientOf } from '../../storage/create-storage.js';
import { startTestS3 } from '../helpers/s3.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { resumableFiles, storedBlobs, TusProbe } from '../helpers/tus.js';
import { SHARED_ASSETS } from '../helpers/upload.js';

/**
 * Issue 20, resumable and deduplicated uploads at the API: tus (POST /api/uploads) on a real Redis and
 * Temporal, the API in this process (no workers: accepted jobs wait). Real assets.
 */

const SEED = 20_20;
const MAX_BYTES = 8 * 1024 * 1024;
const MAX_FILES = 8;
const HELMET = readFileSync(path.join(SHARED_ASSETS, 'DamagedHelmet.glb'));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

type StartAnswer = {
  status: number;
  code?: string;
  message?: string;
  jobId?: string;
  files?: { name: string; sha256: string; size: number }[];
};

describe('resumable, deduplicated uploads (tus)', () => {
  let stack: TestStack;
  let connection: Connection;
  let reader: Redis;
  let subscriber: Redis;
  const apis: ApiServer[] = [];
  let url: string;

  async function startApi(env: Record<string, string>): Promise<string> {
    const config = loadConfig(apiSchema, {
      ...stack.env,
      UPLOAD_MAX_BYTES: String(MAX_BYTES),
      UPLOAD_MAX_FILES: String(MAX_FILES),
      API_SUBMIT_BURST: '1000',
      LOG_LEVEL: 'silent',
      ...env,
    });
    const api = createApiServer({
      config,
      temporal: new Client({ connection, namespace: stack.namespace }),
      redis: reader,
      subscriber,
      storage: createStorage(config),
      log: createLogger('api-test', 'silent'),
    });
    apis.push(api);
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  }

  const tus = (user: string) => new TusProbe(url, stack.tokenFor(user));

  /** Sends a whole file with one PATCH; the upload id. */
  async function uploadWhole(user: string, bytes: Uint8Array, announce = true): Promise<string> {
    const probe = tus(user);
    const created = await probe.create(bytes.length, { filename: 'f.bin', ...(announce ? { sha256: sha256(bytes) } : {}) });
    expect(created.status).toBe(201);
    const done = await probe.patch(probe.url(created), 0, bytes);
    expect(done.status).toBe(204);
    return uploadIdOf(probe.url(created))!;
  }

  async function startJob(user: string, files: { uploadId: string; name: string }[], options: object = {}): Promise<StartAnswer> {
    const res = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.tokenFor(user)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ files, options }),
    });
    const body = (await res.json()) as { error?: { code: string; message: string }; jobId?: string; files?: StartAnswer['files'] };
    return { status: res.status, ...body.error, ...(body.jobId ? { jobId: body.jobId, files: body.files } : {}) };
  }

  beforeAll(async () => {
    stack = await startStack({ components: [] });
    connection = await Connection.connect({ address: stack.temporalAddress });
    reader = createRedis(stack.redisUrl, 'reader');
    subscriber = createRedis(stack.redisUrl, 'subscriber');
    url = await startApi({});
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    reader?.disconnect();
    subscriber?.disconnect();
    await connection?.close();
    await stack?.stop();
  });

  it('an upload cut at 60 % resumes from where it stopped and completes with the same sha256', async () => {
    const probe = tus('cutter');
    const created = await probe.create(HELMET.length, { filename: 'DamagedHelmet.glb', sha256: sha256(HELMET) });
    expect(created.status).toBe(201);
    const uploadUrl = probe.url(created);
    const id = uploadIdOf(uploadUrl)!;
    const cut = Math.floor(HELMET.length * 0.6);
    // One PATCH announcing the whole file, cut by the client once the server holds 60 % of it.
    const request = http.request(uploadUrl, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${stack.tokenFor('cutter')}`,
        'tus-resumable': '1.0.0',
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
        'content-length': String(HELMET.length),
      },
    });
    request.on('error', () => undefined); // the cut is the point
    request.write(HELMET.subarray(0, cut));
    const partial = path.join(stack.dataDir, 'uploads', 'resumable', id);
    await waitFor(() => (statSync(partial, { throwIfNoEntry: false })?.size ?? 0) >= cut, {
      timeoutMs: 20_000,
      what: '60 % on the server',
    });
    request.destroy();

    const head = await probe.head(uploadUrl);
    expect(head.status).toBe(200);
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBe(cut);
    expect(Number(head.headers.get('upload-length'))).toBe(HELMET.length);
    const rest = await probe.patch(uploadUrl, offset, HELMET.subarray(offset));
    expect(rest.status).toBe(204);
    expect(Number(rest.headers.get('upload-offset'))).toBe(HELMET.length);
    // The last answer lost, the client asks again: complete (not 404, which would send the file again).
    const again = await probe.head(uploadUrl);
    expect(again.status).toBe(200);
    expect([again.headers.get('upload-offset'), again.headers.get('upload-length')]).toEqual([
      String(HELMET.length),
      String(HELMET.length),
    ]);
    expect((await tus('someone-else').head(uploadUrl)).status).toBe(404);
    // Finished: the partial copy is gone, the bytes are in the content-addressed store once.
    expect(resumableFiles(stack.dataDir).filter((f) => f.startsWith(id))).toEqual([]);
    expect(storedBlobs(stack.dataDir)).toContain(sha256(HELMET));

    const job = await startJob('cutter', [{ uploadId: id, name: 'DamagedHelmet.glb' }]);
    expect(job.status).toBe(202);
    expect(job.files).toEqual([{ name: 'DamagedHelmet.glb', sha256: sha256(HELMET), size: HELMET.length }]);
    const input = await fetch(`${url}/api/jobs/${job.jobId}/inputs/DamagedHelmet.glb`, {
      headers: { authorization: `Bearer ${stack.tokenFor('cutter')}` },
    });
    expect(sha256(new Uint8Array(await input.arrayBuffer()))).toBe(sha256(HELMET));
  });

  it('a second upload of the same bytes stores nothing new: reuse by hash sends none, a resend is not kept twice', async () => {
    const bytes = new Uint8Array(fc.sample(fc.uint8Array({ minLength: 40_000, maxLength: 40_000 }), { seed: SEED, numRuns: 1 })[0]!);
    const digest = sha256(bytes);
    const owner = stack.tokenFor('twice');
    const reuse = (token: string) =>
      fetch(`${url}/api/uploads/reuse`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sha256: digest, size: bytes.length }),
      });
    expect((await reuse(owner)).status).toBe(404);
    const first = await uploadWhole('twice', bytes);
    const blobsAfterFirst = storedBlobs(stack.dataDir).length;

    const again = await reuse(owner);
    expect(again.status).toBe(201);
    const reused = (await again.json()) as { uploadId: string; sha256: string };
    expect(reused.sha256).toBe(digest);
    expect(reused.uploadId).not.toBe(first);
    // A client that does not ask sends the bytes again; the store still keeps them once.
    const partials = resumableFiles(stack.dataDir);
    const resent = await uploadWhole('twice', bytes, false);
    expect(storedBlobs(stack.dataDir).length).toBe(blobsAfterFirst);
    expect(resumableFiles(stack.dataDir)).toEqual(partials);

    const job = await startJob('twice', [
      { uploadId: reused.uploadId, name: 'a.glb' },
      { uploadId: resent, name: 'a.bin' },
    ]);
    expect(job.status).toBe(202);
    expect(job.files!.map((f) => f.sha256)).toEqual([digest, digest]);
    expect(storedBlobs(stack.dataDir).length).toBe(blobsAfterFirst);
    // Another user who knows the digest gets nothing from it.
    const stranger = await reuse(stack.tokenFor('stranger'));
    expect(stranger.status).toBe(404);
    expect(((await stranger.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_NOT_HELD');
  });

  it('another user can neither resume, read, delete nor start a job from your upload', async () => {
    const bytes = HELMET.subarray(0, 100_000);
    const mine = tus('owner-a');
    const created = await mine.create(bytes.length, { filename: 'x.glb' });
    const uploadUrl = mine.url(created);
    expect((await mine.patch(uploadUrl, 0, bytes.subarray(0, 50_000))).status).toBe(204);

    const theirs = tus('owner-b');
    const head = await theirs.head(uploadUrl);
    expect(head.status).toBe(404);
    expect(head.headers.get('upload-offset')).toBeNull();
    expect((await theirs.patch(uploadUrl, 50_000, bytes.subarray(50_000))).status).toBe(404);
    expect((await theirs.delete(uploadUrl)).status).toBe(404);
    expect((await fetch(uploadUrl, { headers: { authorization: `Bearer ${stack.tokenFor('owner-b')}` } })).status).toBe(405);
    // A metadata "owner" of the client's choosing is overwritten with the token's.
    const forged = await theirs.create(10, { owner: 'owner-a' });
    expect((await mine.head(theirs.url(forged))).status).toBe(404);
    // No CORS header for a page of another site (API_CORS_ORIGINS is empty), unlike @tus/server's default `*`.
    const fromElsewhere = await fetch(uploadUrl, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${stack.tokenFor('owner-a')}`, 'tus-resumable': '1.0.0', origin: 'https://elsewhere.example' },
    });
    expect(fromElsewhere.status).toBe(200);
    expect(fromElsewhere.headers.get('access-control-allow-origin')).toBeNull();
    // Without a token, nothing at all.
    expect((await fetch(uploadUrl, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(401);

    // Still the owner's, at the offset they left it.
    expect(Number((await mine.head(uploadUrl)).headers.get('upload-offset'))).toBe(50_000);
    expect((await mine.patch(uploadUrl, 50_000, bytes.subarray(50_000))).status).toBe(204);
    const id = uploadIdOf(uploadUrl)!;
    const stolen = await startJob('owner-b', [{ uploadId: id, name: 'x.glb' }]);
    expect(stolen.status).toBe(400);
    expect(stolen.code).toBe('UPLOAD_NOT_FOUND');
    expect((await startJob('owner-a', [{ uploadId: id, name: 'x.glb' }])).status).toBe(202);
  });

  it('refuses a file over the cap from Upload-Length, and a PATCH past it from Content-Length, before a byte is written', async () => {
    const probe = tus('capped');
    const before = resumableFiles(stack.dataDir);
    const tooLarge = await probe.create(MAX_BYTES + 1);
    expect(tooLarge.status).toBe(413);
    expect(resumableFiles(stack.dataDir)).toEqual(before);
    // Created at 1 000 bytes, then a PATCH declaring 1 001: refused on its headers, the file stays empty.
    const created = await probe.create(1000);
    const uploadUrl = probe.url(created);
    const over = await new Promise<number>((resolve, reject) => {
      const request = http.request(uploadUrl, {
        method: 'PATCH',
        headers: {
          authorization: `Bearer ${stack.tokenFor('capped')}`,
          'tus-resumable': '1.0.0',
          'upload-offset': '0',
          'content-type': 'application/offset+octet-stream',
          'content-length': '1001',
        },
      });
      request.on('response', (res) => resolve(res.statusCode!));
      request.on('error', reject);
      request.flushHeaders(); // headers only: the answer comes before any byte of the body
    });
    expect(over).toBe(413);
    expect(Number((await probe.head(uploadUrl)).headers.get('upload-offset'))).toBe(0);
    expect(statSync(path.join(stack.dataDir, 'uploads', 'resumable', uploadIdOf(uploadUrl)!)).size).toBe(0);
    // Without Upload-Length (deferred) there is nothing to check first: refused.
    const deferred = await fetch(`${url}/api/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.tokenFor('capped')}`, 'tus-resumable': '1.0.0', 'upload-defer-length': '1' },
    });
    expect(deferred.status).toBe(400);
    // Files under the cap each, over it together: the job start says so.
    const half = new Uint8Array(MAX_BYTES / 2 + 1).fill(7);
    const a = await uploadWhole('capped', half);
    const b = await uploadWhole(
      'capped',
      half.map((v, i) => (i === 0 ? 8 : v)),
    );
    const job = await startJob('capped', [
      { uploadId: a, name: 'm.gltf' },
      { uploadId: b, name: 'm.bin' },
    ]);
    expect(job.status).toBe(413);
    expect(job.code).toBe('UPLOAD_TOO_LARGE');
  });

  it('refuses bytes that do not match the announced sha256, keeping nothing', async () => {
    const probe = tus('liar');
    const bytes = HELMET.subarray(0, 30_000);
    const before = storedBlobs(stack.dataDir).length;
    const partials = resumableFiles(stack.dataDir);
    const created = await probe.create(bytes.length, { sha256: sha256(HELMET) });
    const answer = await probe.patch(probe.url(created), 0, bytes);
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain('UPLOAD_HASH_MISMATCH');
    expect(storedBlobs(stack.dataDir).length).toBe(before);
    expect(resumableFiles(stack.dataDir)).toEqual(partials);
  });

  it('a job start from upload ids applies every name check of the multipart upload (seeded variety)', async () => {
    const ids = await Promise.all(
      Array.from({ length: MAX_FILES + 1 }, (_, i) => uploadWhole('namer', new TextEncoder().encode(`file ${i}`))),
    );
    const unicodeWord = fc.string({
      unit: fc.constantFrom(...'абвгдежзийклмнопрстуфхцчшщыэюяäöüßéèñçøå漢字模型テクスチャ😀🎮 -_.()'),
      minLength: 1,
      maxLength: 12,
    });
    const kinds = fc.oneof(
      unicodeWord.map((w) => ({ kind: 'valid' as const, files: [`${w.trim() || 'x'}.gltf`, `${w.trim() || 'x'}.bin`] })),
      fc
        .integer({ min: 130, max: 400 })
        .chain((n) =>
          fc
            .constantFrom('я', 'a', '模', '😀')
            .map((ch) => ({ kind: 'long' as const, files: [`${ch.repeat(Math.ceil(n / Buffer.byteLength(ch)) * 2)}.glb`] })),
        ),
      fc
        .tuple(unicodeWord, fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\n'))
        .map(([w, c]) => ({ kind: 'control' as const, files: [`${w}${c}x.glb`] })),
      fc.constantFrom('a/b.glb', '..', '.', 'c\\d.glb', '').map((name) => ({ kind: 'path' as const, files: [name] })),
      unicodeWord.map((w) => ({ kind: 'duplicate' as const, files: [`${w}.gltf`, `${w}.bin`, `${w}.bin`] })),
      // The same name in two Unicode normalisations is the same name.
      fc.constant({ kind: 'duplicate' as const, files: ['modèle.gltf', 'mode\u0300le.gltf'.replace('.gltf', '.bin'), 'modèle.bin'] }),
      fc.constant({ kind: 'too many files' as const, files: ['m.gltf', ...Array.from({ length: MAX_FILES }, (_, i) => `t${i}.png`)] }),
      fc.tuple(unicodeWord, unicodeWord).map(([a, b]) => ({ kind: 'two models' as const, files: [`${a}-1.glb`, `${b}-2.glb`] })),
      fc.constant({ kind: 'no model' as const, files: ['texture.png'] }),
    );
    const cases = fc.sample(kinds, { seed: SEED, numRuns: 50 });
    const expected: Record<string, string> = {
      long: 'UPLOAD_BAD_FILE',
      control: 'UPLOAD_BAD_FILE',
      path: 'UPLOAD_BAD_FILE',
      duplicate: 'UPLOAD_DUPLICATE_NAME',
      'too many files': 'UPLOAD_TOO_MANY_FILES',
      'two models': 'UPLOAD_TOO_MANY_MODELS',
      'no model': 'UPLOAD_NO_MODEL',
    };
    const seen = new Set<string>();
    for (const { kind, files } of cases) {
      seen.add(kind);
      const answer = await startJob(
        'namer',
        files.map((name, i) => ({ uploadId: ids[i]!, name })),
      );
      const what = `${kind}: ${JSON.stringify(files).slice(0, 120)}`;
      if (kind === 'valid') {
        expect(answer.status, what).toBe(202);
        // Unicode names come back exactly as sent.
        expect(
          answer.files!.map((f) => f.name),
          what,
        ).toEqual(files);
        continue;
      }
      expect(answer.status, what).toBe(400);
      expect(answer.code, what).toBe(expected[kind]);
      expect(answer.message!.length, what).toBeGreaterThan(20);
    }
    expect(seen.size).toBeGreaterThanOrEqual(7);
    // An id that is no upload at all, and one that is not even an id.
    expect((await startJob('namer', [{ uploadId: 'f'.repeat(32), name: 'm.glb' }])).code).toBe('UPLOAD_NOT_FOUND');
    expect((await startJob('namer', [{ uploadId: '../../etc', name: 'm.glb' }])).code).toBe('BAD_REQUEST');
  });

  it('abandoned partial uploads expire and are deleted, and a finished upload no job names is released: nothing left behind', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-expiry-'));
    try {
      const shortUrl = await startApi({ DATA_DIR: dataDir, UPLOAD_RESUME_SECONDS: '1' });
      const api = apis.at(-1)!;
      const probe = new TusProbe(shortUrl, stack.tokenFor('leaver'));
      const created = await probe.create(HELMET.length);
      const uploadUrl = probe.url(created);
      expect((await probe.patch(uploadUrl, 0, HELMET.subarray(0, 200_000))).status).toBe(204);
      expect(resumableFiles(dataDir).length).toBe(2); // the bytes and their .json
      expect(created.headers.get('upload-expires')).not.toBeNull();
      const finished = await probe.create(50_000);
      expect((await probe.patch(probe.url(finished), 0, HELMET.subarray(0, 50_000))).status).toBe(204);
      expect(storedBlobs(dataDir)).toEqual([sha256(HELMET.subarray(0, 50_000))]);
      // Polled: the sweep deletes both once their second is over (the API also sweeps every 10 minutes).
      let removed = 0;
      await waitFor(
        async () => {
          removed += await api.sweepExpiredUploads();
          return resumableFiles(dataDir).length === 0 && storedBlobs(dataDir).length === 0;
        },
        { timeoutMs: 15_000, what: 'the expired upload swept and the unused one released' },
      );
      expect(removed).toBe(2);
      expect((await probe.head(uploadUrl)).status).toBe(404);
      // Its id no longer starts a job.
      const start = await fetch(`${shortUrl}/api/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.tokenFor('leaver')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ files: [{ uploadId: uploadIdOf(probe.url(finished)), name: 'm.glb' }] }),
      });
      expect(((await start.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_NOT_FOUND');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
  it('limits upload creations per user (API_SUBMIT_BURST × UPLOAD_MAX_FILES) with 429 and Retry-After; others are not held back', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-flood-'));
    try {
      const limited = await startApi({ DATA_DIR: dataDir, API_SUBMIT_BURST: '2', API_SUBMIT_PER_MINUTE: '1', UPLOAD_MAX_FILES: '3' });
      const flooder = new TusProbe(limited, stack.tokenFor('flooder'));
      const answers = [];
      for (let i = 0; i < 8; i++) answers.push(await flooder.create(1000));
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201, 201, 429, 429]);
      expect(Number(answers[6]!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await answers[6]!.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_UPLOADS');
      expect(resumableFiles(dataDir).length).toBe(6 * 2);
      expect((await new TusProbe(limited, stack.tokenFor('calm')).create(1000)).status).toBe(201);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('STORAGE=s3: an upload begun on one API process is resumed on another (the partial upload is in the bucket)', async () => {
    const s3 = await startTestS3();
    const client = s3ClientOf(loadConfig(apiSchema, { ...stack.env, ...s3.env, STORAGE: 's3' }));
    const dirs = [0, 1].map(() => mkdtempSync(path.join(os.tmpdir(), 'asset-farm-s3-api-')));
    try {
      const env = { ...s3.env, STORAGE: 's3', S3_PREFIX: 'stack/' };
      const [first, second] = [await startApi({ ...env, DATA_DIR: dirs[0]! }), await startApi({ ...env, DATA_DIR: dirs[1]! })];
      const token = stack.tokenFor('roamer');
      const onFirst = new TusProbe(first!, token);
      const onSecond = new TusProbe(second!, token);
      const created = await onFirst.create(HELMET.length, { filename: 'DamagedHelmet.glb', sha256: sha256(HELMET) });
      expect(created.status).toBe(201);
      const id = uploadIdOf(onFirst.url(created))!;
      const cut = Math.floor(HELMET.length * 0.6);
      expect((await onFirst.patch(`${first}/api/uploads/${id}`, 0, HELMET.subarray(0, cut))).status).toBe(204);

      const head = await onSecond.head(`${second}/api/uploads/${id}`);
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('upload-offset'))).toBe(cut);
      // Another user, on either process: nothing.
      expect((await new TusProbe(second!, stack.tokenFor('other')).head(`${second}/api/uploads/${id}`)).status).toBe(404);
      expect((await onSecond.patch(`${second}/api/uploads/${id}`, cut, HELMET.subarray(cut))).status).toBe(204);
      const start = await fetch(`${first}/api/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ files: [{ uploadId: id, name: 'DamagedHelmet.glb' }] }),
      });
      expect(start.status).toBe(202);
      expect(((await start.json()) as { files: { sha256: string }[] }).files[0]!.sha256).toBe(sha256(HELMET));
      // The partial upload is gone from the bucket; the blob is there once; neither API process kept a file.
      const keys = ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'stack/' }))).Contents ?? []).map(
        (o) => o.Key!,
      );
      expect(keys.filter((k) => k.startsWith('stack/uploads/resumable/'))).toEqual([]);
      expect(keys.filter((k) => k.startsWith('stack/uploads/sha256/'))).toEqual([
        `stack/uploads/sha256/${sha256(HELMET).slice(0, 2)}/${sha256(HELMET)}`,
      ]);
      for (const dir of dirs) expect(resumableFiles(dir)).toEqual([]);

      // An abandoned partial upload in the bucket expires and is deleted too.
      const short = await startApi({ ...env, DATA_DIR: dirs[0]!, UPLOAD_RESUME_SECONDS: '1' });
      const sweeper = apis.at(-1)!;
      const leaver = new TusProbe(short, token);
      const abandoned = await leaver.create(HELMET.length);
      expect((await leaver.patch(leaver.url(abandoned), 0, HELMET.subarray(0, 100_000))).status).toBe(204);
      const resumableKeys = async () =>
        ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'stack/uploads/resumable/' }))).Contents ?? []).map(
          (o) => o.Key!,
        );
      expect((await resumableKeys()).length).toBeGreaterThan(0);
      await waitFor(
        async () => {
          await sweeper.sweepExpiredUploads();
          return (await resumableKeys()).length === 0;
        },
        { timeoutMs: 15_000, what: 'the abandoned upload deleted from the bucket' },
      );
      expect((await leaver.head(leaver.url(abandoned))).status).toBe(404);
    } finally {
      client.destroy();
      await s3.stop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});
