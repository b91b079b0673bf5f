import { createReadStream, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { largeAsset, uploadSizedGlb } from '../assets/large-asset.js';
import type { BenchContext } from '../lib/bench-context.js';
import { startApi } from '../lib/bench-stack.js';
import { memoryOf, resetPeakMemory } from '../lib/proc-stats.js';
import { row, type BenchResult } from '../lib/report.js';
import { spawnNode } from '../lib/rpc.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface UploadMeasurement {
  /** `api`: multipart POST /api/jobs; `resumable`: tus POST + PATCH /api/uploads, then the JSON job start; `bare`: the sink. */
  system: 'api' | 'resumable' | 'bare';
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  status: number;
  baselineRss: number;
  peakRss: number;
  rssGrowth: number;
}

/** Streams `file` as a one-file multipart body (as a browser's FormData would) and resolves with the status. */
function postFile(url: string, file: string, headers: Record<string, string>, multipart: boolean): Promise<number> {
  const size = statSync(file).size;
  const boundary = `----asset-farm-bench-${Date.now()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="${path.basename(file)}"\r\nContent-Type: model/gltf-binary\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = multipart
    ? Readable.from(
        (async function* () {
          yield head;
          yield* createReadStream(file, { highWaterMark: MiB });
          yield tail;
        })(),
      )
    : createReadStream(file, { highWaterMark: MiB });
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: {
          ...headers,
          'content-type': multipart ? `multipart/form-data; boundary=${boundary}` : 'application/octet-stream',
          'content-length': String(multipart ? head.length + size + tail.length : size),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    body.pipe(req);
  });
}

/** Streams `file` to `url` with `method`, and resolves with the status and the Location header. */
function streamFile(
  url: string,
  method: string,
  file: string,
  headers: Record<string, string>,
): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'content-length': String(statSync(file).size) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}) }));
    });
    req.on('error', reject);
    createReadStream(file, { highWaterMark: MiB }).pipe(req);
  });
}

/**
 * The page's and the CLI's way: a tus upload (create, then one PATCH of the whole file, which the API
 * hashes into content-addressed storage on its last byte) and the job start naming it. The status of
 * the job start (202), or of the first step that failed.
 */
async function sendResumable(apiUrl: string, file: string, token: string): Promise<number> {
  const tus = { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' };
  const created = await fetch(`${apiUrl}/api/uploads`, {
    method: 'POST',
    headers: { ...tus, 'upload-length': String(statSync(file).size) },
  });
  const location = created.headers.get('location');
  if (created.status !== 201 || !location) return created.status;
  const uploadUrl = new URL(location, apiUrl).toString();
  const sent = await streamFile(uploadUrl, 'PATCH', file, {
    ...tus,
    'upload-offset': '0',
    'content-type': 'application/offset+octet-stream',
  });
  if (sent.status !== 204) return sent.status;
  const started = await fetch(`${apiUrl}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ files: [{ uploadId: uploadUrl.split('/').pop(), name: path.basename(file) }] }),
  });
  return started.status;
}

/** Uploads once while sampling the server's RSS; its peak-RSS mark is reset first so the peak is this upload's. */
async function measure(
  system: UploadMeasurement['system'],
  pid: number,
  send: () => Promise<number>,
  bytes: number,
): Promise<UploadMeasurement> {
  const baselineRss = memoryOf(pid).rss;
  const canReset = resetPeakMemory(pid);
  let sampledPeak = baselineRss;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, memoryOf(pid).rss);
  }, 20);
  const t0 = performance.now();
  const status = await send();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  const peakRss = Math.max(sampledPeak, canReset ? memoryOf(pid).peak : 0);
  return { system, bytes, seconds, mibPerSecond: bytes / MiB / seconds, status, baselineRss, peakRss, rssGrowth: peakRss - baselineRss };
}

/**
 * Benchmark 6: a generated 1 GiB GLB streamed through POST /api/jobs of the real API (JWT, busboy,
 * hashing into content-addressed storage, job start), beside a bare HTTP server writing the body
 * to a file on the same disk. Throughput and the server's RSS growth during the upload.
 */
export async function runUploadBenchmark(ctx: BenchContext): Promise<BenchResult> {
  const bytes = ctx.smoke ? 16 * MiB : GiB;
  ctx.log(`upload: generating a ${bytes / MiB} MiB GLB (cached in bench/.cache)`);
  const file = await uploadSizedGlb(bytes, 1);
  const api = await startApi(ctx.infra, { UPLOAD_MAX_BYTES: String(2 * GiB) });
  const sink = spawnNode('bare-sink', 'bench/upload/bare-sink.ts', { env: ctx.infra.env, args: [ctx.infra.dataDir] });
  const token = ctx.infra.tokenFor('bench-uploader');
  const runs: UploadMeasurement[] = [];
  try {
    const { url: sinkUrl } = await sink.call<{ url: string }>('address', undefined, 60_000);
    // One small upload first, so the API's upload path is compiled and loaded before the baseline.
    const warm = await postFile(
      `${api.url}/api/jobs`,
      await largeAsset({ triangles: 12, textures: 0, textureSize: 16, seed: 1 }),
      { authorization: `Bearer ${token}` },
      true,
    );
    if (warm !== 202) throw new Error(`warm-up upload answered ${warm}:\n${api.process.tail.join('\n')}`);
    for (let rep = 0; rep < ctx.repeats; rep++) {
      ctx.log(`upload: repeat ${rep + 1}/${ctx.repeats}, bare sink`);
      runs.push(await measure('bare', sink.pid, () => postFile(sinkUrl, file, {}, false), bytes));
      await sink.call('cleanup');
      ctx.log(`upload: repeat ${rep + 1}/${ctx.repeats}, API`);
      const measured = await measure(
        'api',
        api.process.pid,
        () => postFile(`${api.url}/api/jobs`, file, { authorization: `Bearer ${token}` }, true),
        bytes,
      );
      if (measured.status !== 202) throw new Error(`upload answered ${measured.status}:\n${api.process.tail.join('\n')}`);
      runs.push(measured);
      // The stored blob is content-addressed; remove it so every repeat writes the whole file again.
      await rm(path.join(ctx.infra.dataDir, 'uploads', 'sha256'), { recursive: true, force: true });
      ctx.log(`  API ${measured.mibPerSecond.toFixed(0)} MiB/s, RSS +${(measured.rssGrowth / MiB).toFixed(1)} MiB`);
      ctx.log(`upload: repeat ${rep + 1}/${ctx.repeats}, API resumable (tus)`);
      const resumable = await measure('resumable', api.process.pid, () => sendResumable(api.url, file, token), bytes);
      if (resumable.status !== 202) throw new Error(`resumable upload answered ${resumable.status}:\n${api.process.tail.join('\n')}`);
      runs.push(resumable);
      await rm(path.join(ctx.infra.dataDir, 'uploads', 'sha256'), { recursive: true, force: true });
      ctx.log(`  API resumable ${resumable.mibPerSecond.toFixed(0)} MiB/s, RSS +${(resumable.rssGrowth / MiB).toFixed(1)} MiB`);
    }
  } finally {
    await Promise.all([api.stop(), sink.stop()]);
  }
  const of = (system: UploadMeasurement['system']) => runs.filter((r) => r.system === system);
  const [apiRuns, resumableRuns, bareRuns] = [of('api'), of('resumable'), of('bare')];
  const scale = `${(bytes / MiB).toLocaleString('en-US')} MiB GLB`;
  return {
    id: 'upload',
    title: '6. Upload',
    status: 'ok',
    rows: [
      row(
        'throughput',
        scale,
        'MiB/s',
        apiRuns.map((r) => r.mibPerSecond),
        { name: 'bare sink', values: bareRuns.map((r) => r.mibPerSecond) },
      ),
      row(
        'server RSS growth (peak − before)',
        scale,
        'MiB',
        apiRuns.map((r) => r.rssGrowth / MiB),
        { name: 'bare sink', values: bareRuns.map((r) => r.rssGrowth / MiB) },
        {
          text: '≤ 64 MB',
          met: (m) => m * MiB <= 64e6,
        },
      ),
      row(
        'resumable (tus) throughput',
        scale,
        'MiB/s',
        resumableRuns.map((r) => r.mibPerSecond),
        { name: 'bare sink', values: bareRuns.map((r) => r.mibPerSecond) },
      ),
      row(
        'resumable (tus) server RSS growth (peak − before)',
        scale,
        'MiB',
        resumableRuns.map((r) => r.rssGrowth / MiB),
        { name: 'bare sink', values: bareRuns.map((r) => r.rssGrowth / MiB) },
        {
          text: '≤ 64 MB',
          met: (m) => m * MiB <= 64e6,
        },
      ),
    ],
    details: { bytes, runs },
    notes: [],
  };
}
