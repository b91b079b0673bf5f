import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { PROJECT_ROOT } from '../../common/config.js';
import { outputBaseName } from '../../activities/stages/package.js';
import { type Submission, type UploadFile, corpusSubmissions } from './corpus-submissions.js';
import type { StartedStack } from './started-stack.js';
import { SHARED_ASSETS } from './upload.js';

/**
 * Issue 17's check, run against a live stack through its real HTTP API: every submission uploaded as the
 * page uploads it, each job followed to its end over REST, its attempts read from Temporal's history,
 * a healthy DamagedHelmet job submitted meanwhile, and the file system searched afterwards for anything
 * of this run written outside the data folder. Returns the figures; the callers assert on them.
 */

/** How one submission ended. */
export interface SubmissionOutcome {
  label: string;
  expect: Submission['expect']['kind'];
  /** HTTP status of the upload. */
  status: number;
  jobId?: string;
  /** COMPLETED, FAILED…, or HUNG when it had not ended by the deadline. */
  jobStatus?: string;
  error?: { type: string; message: string; codes: string[] };
  /** Highest attempt of any activity of the job (Temporal history). */
  maxAttempt?: number;
  /** Seconds from the upload's 202 to the job's end. */
  seconds?: number;
  /** Why it does not meet its expectation, or null. */
  problem: string | null;
}

export interface CorpusFigures {
  submissions: number;
  valid: { total: number; completed: number; failedNamingFeature: number; completedPercent: number };
  invalid: { total: number; failedFirstAttemptWithCodes: number; percent: number };
  hostile: { total: number; refusedOrContained: number };
  roundTrip: { outputs: number; completed: number };
  unicode: { checked: number; roundTripped: number };
  workerCrashes: number;
  hangs: number;
  retriesOfDeterministicFailures: number;
  retries: number;
  filesOutsideDataDir: string[];
  healthy: { asset: string; status: string; seconds: number };
  /** Seconds of the longest job, upload to end. */
  longestJobSeconds: number;
  /** Seconds of the longest invalid upload's job: issue 17 asks "well under a minute". */
  longestInvalidSeconds: number;
  wallSeconds: number;
  problems: string[];
}

export interface CorpusRunOptions {
  count: number;
  seed: number;
  /** Jobs in flight at once: enough to keep the HPC worker busy, few enough that none waits minutes in a queue. */
  inFlight?: number;
  /** The healthy job submitted once a third of the submissions are in. */
  healthyAsset?: string;
  corpusCases?: number;
  roundTrips?: number;
  /** A job that has not ended this long after its upload is a hang. */
  hangSeconds?: number;
  log?: (line: string) => void;
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT']);
const ARTIST_FACING = new Set(['INVALID_ASSET', 'UNSUPPORTED_ASSET', 'ASSET_LIMIT']);
const USERS = ['corpus-ana', 'corpus-bo', 'corpus-chen', 'corpus-dilnoza'];

/** Runs the corpus against `stack`. */
export async function runCorpus(
  stack: StartedStack,
  options: CorpusRunOptions,
): Promise<{ figures: CorpusFigures; outcomes: SubmissionOutcome[] }> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const hangSeconds = options.hangSeconds ?? 180;
  const token = randomBytes(4).toString('hex');
  const marker = Date.now();
  const submissions = await corpusSubmissions({
    count: options.count,
    seed: options.seed,
    token,
    ...(options.corpusCases !== undefined ? { corpusCases: options.corpusCases } : {}),
    ...(options.roundTrips !== undefined ? { roundTrips: options.roundTrips } : {}),
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const temporal = new Client({ connection, namespace: stack.namespace });
  const outcomes: SubmissionOutcome[] = [];
  const roundTrips: SubmissionOutcome[] = [];
  const unicode = { checked: 0, roundTripped: 0 };
  const problems: string[] = [];
  let healthy: Promise<{ asset: string; status: string; seconds: number }> | null = null;
  const healthyAsset = options.healthyAsset ?? 'DamagedHelmet.glb';
  const queue = [...submissions];
  let done = 0;

  const runOne = async (s: Submission, user: string): Promise<SubmissionOutcome> => {
    const outcome = await submitAndFollow(stack, temporal, s, user, hangSeconds);
    if (outcome.jobStatus === 'COMPLETED' && s.expect.kind === 'valid') {
      const main = s.files.find((f) => /\.(glb|gltf)$/i.test(f.name))!.name;
      // eslint-disable-next-line no-control-regex -- ASCII or not is the point
      if (/[^\u0000-\u007f]/.test(main)) {
        unicode.checked++;
        const problem = await namesRoundTrip(
          stack,
          user,
          outcome.jobId!,
          main,
          s.files.map((f) => f.name),
        );
        if (problem) problems.push(`${s.label}: ${problem}`);
        else unicode.roundTripped++;
      }
      if (s.roundTrip) {
        for (const output of await downloadGlbs(stack, user, outcome.jobId!)) {
          const again: Submission = { label: `round-trip/${s.label}/${output.name}`, files: [output], expect: { kind: 'valid' } };
          roundTrips.push(await submitAndFollow(stack, temporal, again, user, hangSeconds));
        }
      }
    }
    return outcome;
  };

  const workers = Array.from({ length: options.inFlight ?? 4 }, async (_, w) => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const outcome = await runOne(s, USERS[w % USERS.length]!);
      outcomes.push(outcome);
      done++;
      if (outcome.problem) log(`✗ ${outcome.label}: ${outcome.problem}`);
      if (done % 25 === 0) log(`${done}/${submissions.length} done (${Math.round((Date.now() - started) / 1000)} s)`);
      if (!healthy && done >= submissions.length / 3) healthy = followHealthy(stack, temporal, healthyAsset, hangSeconds);
    }
  });
  await Promise.all(workers);
  healthy ??= followHealthy(stack, temporal, healthyAsset, hangSeconds);
  const healthyOutcome = await healthy;
  await connection.close();

  const all = [...outcomes, ...roundTrips];
  const valid = outcomes.filter((o) => o.expect === 'valid');
  const invalid = outcomes.filter((o) => o.expect === 'invalid');
  const hostile = outcomes.filter((o) => o.expect === 'refused' || o.expect === 'contained');
  const failedNamingFeature = valid.filter((o) => o.jobStatus === 'FAILED' && o.error?.type === 'UNSUPPORTED_ASSET' && !o.problem).length;
  const completed = valid.filter((o) => o.jobStatus === 'COMPLETED').length;
  const firstAttempt = invalid.filter((o) => !o.problem).length;
  const deterministic = all.filter((o) => o.jobStatus === 'FAILED' && ARTIST_FACING.has(o.error?.type ?? ''));
  const crashes = stack.lines.filter((l) => /exited unexpectedly/.test(l)).length + (stack.process.child.exitCode !== null ? 1 : 0);
  const figures: CorpusFigures = {
    submissions: submissions.length,
    valid: { total: valid.length, completed, failedNamingFeature, completedPercent: percent(completed, valid.length) },
    invalid: { total: invalid.length, failedFirstAttemptWithCodes: firstAttempt, percent: percent(firstAttempt, invalid.length) },
    hostile: { total: hostile.length, refusedOrContained: hostile.filter((o) => !o.problem).length },
    roundTrip: { outputs: roundTrips.length, completed: roundTrips.filter((o) => o.jobStatus === 'COMPLETED').length },
    unicode,
    workerCrashes: crashes,
    hangs: all.filter((o) => o.jobStatus === 'HUNG').length + (healthyOutcome.status === 'HUNG' ? 1 : 0),
    retriesOfDeterministicFailures: deterministic.filter((o) => (o.maxAttempt ?? 1) > 1).length,
    retries: all.filter((o) => (o.maxAttempt ?? 1) > 1).length,
    filesOutsideDataDir: [...(await filesOutside(stack.dataDir, token, marker)), ...(await tempFiles(stack.tmpDir))],
    healthy: healthyOutcome,
    longestJobSeconds: Math.max(0, ...all.map((o) => o.seconds ?? 0)),
    longestInvalidSeconds: Math.max(0, ...invalid.map((o) => o.seconds ?? 0)),
    wallSeconds: Math.round((Date.now() - started) / 1000),
    problems: [...problems, ...all.flatMap((o) => (o.problem ? [`${o.label}: ${o.problem}`] : []))],
  };
  return { figures, outcomes: all };
}

function percent(n: number, of: number): number {
  return of ? Math.round((1000 * n) / of) / 10 : 100;
}

/** Uploads one submission and follows its job to its end; judges the outcome against what it must be. */
async function submitAndFollow(
  stack: StartedStack,
  temporal: Client,
  s: Submission,
  user: string,
  hangSeconds: number,
): Promise<SubmissionOutcome> {
  const token = stack.tokenFor(user);
  const base = { label: s.label, expect: s.expect.kind };
  const res = await upload(stack.apiUrl, token, s);
  const body = (await res.json().catch(() => ({}))) as {
    jobId?: string;
    files?: { name: string }[];
    error?: { code: string; message: string };
  };
  if (s.expect.kind === 'refused') {
    const e = s.expect;
    const problem = !e.status.includes(res.status)
      ? `answered ${res.status} ${JSON.stringify(body).slice(0, 200)}, expected ${e.status.join('/')}`
      : !e.codes.includes(body.error?.code ?? '')
        ? `refused with ${body.error?.code}, expected ${e.codes.join(' or ')}`
        : e.names && !body.error?.message.includes(e.names)
          ? `the message does not name the file: ${body.error?.message}`
          : null;
    return { ...base, status: res.status, problem };
  }
  if (s.expect.kind === 'contained' && res.status !== 202) {
    const refusedPlainly = res.status === 400 && typeof body.error?.message === 'string';
    return { ...base, status: res.status, problem: refusedPlainly ? null : `answered ${res.status} ${JSON.stringify(body).slice(0, 200)}` };
  }
  if (res.status !== 202 || !body.jobId)
    return { ...base, status: res.status, problem: `upload answered ${res.status} ${JSON.stringify(body).slice(0, 300)}` };
  if (s.expect.kind === 'contained' && body.files?.some((f) => /[/\\]/.test(f.name)))
    return { ...base, status: res.status, jobId: body.jobId, problem: `stored under a path: ${body.files.map((f) => f.name).join(', ')}` };
  const jobId = body.jobId;
  const from = Date.now();
  const end = await waitForEnd(stack.apiUrl, token, jobId, hangSeconds);
  const seconds = Math.round((Date.now() - from) / 100) / 10;
  const maxAttempt = await maxActivityAttempt(temporal, jobId);
  const error = end.error ? { ...end.error, codes: (end.error.details ?? []).map((d) => (d as { code?: string }).code ?? '') } : undefined;
  const outcome: SubmissionOutcome = {
    ...base,
    status: res.status,
    jobId,
    jobStatus: end.status,
    seconds,
    maxAttempt,
    ...(error ? { error } : {}),
    problem: null,
  };
  outcome.problem = judge(s, outcome);
  return outcome;
}

/** Why an outcome misses its expectation, or null. */
function judge(s: Submission, o: SubmissionOutcome): string | null {
  if (o.jobStatus === 'HUNG') return 'did not end in time';
  if (s.expect.kind === 'valid' || s.expect.kind === 'contained') {
    if (o.jobStatus === 'COMPLETED') return (o.maxAttempt ?? 1) > 1 ? `completed, but on attempt ${o.maxAttempt}` : null;
    // The only acceptable failure of a valid file: this pipeline cannot process a feature, said by name.
    if (
      o.error?.type === 'UNSUPPORTED_ASSET' &&
      /\b(uses|EXT_|KHR_)/.test(o.error.message) &&
      !/PIPELINE_FAULT|READER_CANNOT/.test(o.error.codes.join())
    )
      return null;
    return `${o.jobStatus}: ${o.error?.type} ${o.error?.message.slice(0, 300)}`;
  }
  if (s.expect.kind === 'invalid') {
    if (o.jobStatus !== 'FAILED') return `${o.jobStatus}, expected to fail`;
    if (!ARTIST_FACING.has(o.error?.type ?? '')) return `failed as ${o.error?.type}: ${o.error?.message.slice(0, 200)}`;
    if ((o.maxAttempt ?? 1) > 1) return `failed on attempt ${o.maxAttempt}, not the first`;
    const codes = o.error?.codes ?? [];
    if (codes.length === 0) return `no codes in the failure: ${o.error?.message.slice(0, 200)}`;
    if (s.expect.codes.length && !codes.some((c) => s.expect.kind === 'invalid' && s.expect.codes.includes(c)))
      return `codes ${codes.slice(0, 5).join(', ')}, expected one of ${s.expect.codes.join(', ')}`;
    return null;
  }
  return null;
}

/** The multipart upload the page sends, or one of the raw requests a form cannot say. */
async function upload(apiUrl: string, token: string, s: Submission): Promise<Response> {
  if (s.raw === 'not-multipart')
    return fetch(`${apiUrl}/api/jobs`, {
      method: 'POST',
      // Neither a multipart upload nor the JSON start of finished resumable uploads (docs/PROTOCOL.md).
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'model.glb',
    });
  if (s.raw === 'forged-upload-ids') {
    const ids = ['../../etc/passwd', 'a'.repeat(64), '%2e%2e%2fuploads', `${randomBytes(16).toString('hex')}`];
    return fetch(`${apiUrl}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ files: ids.map((uploadId, i) => ({ uploadId, name: i ? `t${i}.png` : s.files[0]!.name })) }),
    });
  }
  if (s.raw === 'huge-content-length') return hugeContentLength(apiUrl, token, s.files[0]!);
  if (s.raw === 'raw-file-name') {
    // The name's bytes as they are, where a form would have percent-encoded a line break.
    const boundary = `corpus${randomBytes(6).toString('hex')}`;
    const head = `--${boundary}\r\ncontent-disposition: form-data; name="files"; filename="${s.files[0]!.name}"\r\n\r\n`;
    const body = Buffer.concat([Buffer.from(head), s.files[0]!.bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    return fetch(`${apiUrl}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
  }
  const form = new FormData();
  for (const f of s.files) form.append('files', new Blob([new Uint8Array(f.bytes)]), f.name);
  for (const [k, v] of Object.entries(s.fields ?? {})) form.append(k, v);
  return fetch(`${apiUrl}/api/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
}

/** A request declaring 100 GB and sending a few bytes: the API must answer before any byte is stored. */
function hugeContentLength(apiUrl: string, token: string, file: UploadFile): Promise<Response> {
  const url = new URL(`${apiUrl}/api/jobs`);
  const boundary = `corpus${randomBytes(6).toString('hex')}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(100 * 1024 ** 3),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          req.destroy();
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0 }));
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('no answer to a 100 GB Content-Length within 30 s')));
    req.write(`--${boundary}\r\ncontent-disposition: form-data; name="files"; filename="${file.name}"\r\n\r\n`);
    req.write(file.bytes);
  });
}

interface JobEnd {
  status: string;
  error?: { type: string; message: string; details?: unknown[] };
}

/** Polls the job's REST view until it is closed, or HUNG after hangSeconds. */
async function waitForEnd(apiUrl: string, token: string, jobId: string, hangSeconds: number): Promise<JobEnd> {
  const deadline = Date.now() + hangSeconds * 1000;
  let delay = 200;
  while (Date.now() < deadline) {
    const res = await fetch(`${apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.ok) {
      const job = (await res.json()) as { status: string; snapshot: { event: { error?: JobEnd['error'] } | null } | null };
      if (TERMINAL.has(job.status))
        return { status: job.status, ...(job.snapshot?.event?.error ? { error: job.snapshot.event.error } : {}) };
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(2000, delay * 1.5);
  }
  return { status: 'HUNG' };
}

/** The highest attempt any activity of the workflow reached, from its history. */
async function maxActivityAttempt(temporal: Client, jobId: string): Promise<number> {
  const history = await temporal.workflow.getHandle(jobId).fetchHistory();
  let max = 1;
  for (const event of history.events ?? []) max = Math.max(max, event.activityTaskStartedEventAttributes?.attempt ?? 1);
  return max;
}

/** The job names the upload as sent, its outputs carry the name's own letters, and downloads are offered under those names. */
async function namesRoundTrip(stack: StartedStack, user: string, jobId: string, main: string, files: string[]): Promise<string | null> {
  const headers = { authorization: `Bearer ${stack.tokenFor(user)}` };
  const job = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers })).json()) as { assetName?: string };
  if (job.assetName !== main) return `assetName ${JSON.stringify(job.assetName)}, uploaded as ${JSON.stringify(main)}`;
  for (const name of files) {
    const input = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/inputs/${encodeURIComponent(name)}`, { headers });
    await input.arrayBuffer();
    if (downloadName(input) !== name) return `input ${JSON.stringify(name)} offered as ${JSON.stringify(downloadName(input))}`;
  }
  const { outputs } = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs`, { headers })).json()) as {
    outputs: { name: string }[];
  };
  const base = outputBaseName(main);
  for (const o of outputs.filter((x) => x.name.endsWith('.glb'))) {
    if (!o.name.startsWith(base)) return `output ${o.name} does not carry the name ${base}`;
    const res = await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs/${encodeURIComponent(o.name)}`, { headers });
    await res.arrayBuffer();
    if (downloadName(res) !== o.name) return `output ${o.name} offered as ${JSON.stringify(downloadName(res))}`;
  }
  return null;
}

/** The file name a browser saves a download under (RFC 6266: filename* first). */
function downloadName(res: Response): string | null {
  const header = res.headers.get('content-disposition') ?? '';
  const extended = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (extended) return decodeURIComponent(extended[1]!);
  // Quoted, or a bare token (what Express sends for a plain ASCII name).
  const plain = /filename=(?:"([^"]*)"|([^;\s]+))/i.exec(header);
  return plain ? (plain[1] ?? plain[2]!) : null;
}

async function downloadGlbs(stack: StartedStack, user: string, jobId: string): Promise<UploadFile[]> {
  const headers = { authorization: `Bearer ${stack.tokenFor(user)}` };
  const { outputs } = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs`, { headers })).json()) as {
    outputs: { name: string }[];
  };
  return Promise.all(
    outputs
      .filter((o) => o.name.endsWith('.glb'))
      .map(async (o) => ({
        name: o.name,
        bytes: new Uint8Array(
          await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs/${encodeURIComponent(o.name)}`, { headers })).arrayBuffer(),
        ),
      })),
  );
}

async function followHealthy(
  stack: StartedStack,
  temporal: Client,
  asset: string,
  hangSeconds: number,
): Promise<{ asset: string; status: string; seconds: number }> {
  const bytes = new Uint8Array(await fs.readFile(path.join(SHARED_ASSETS, asset)));
  const outcome = await submitAndFollow(
    stack,
    temporal,
    { label: `healthy/${asset}`, files: [{ name: asset, bytes }], expect: { kind: 'valid' } },
    'corpus-healthy',
    hangSeconds,
  );
  return {
    asset,
    status: outcome.problem ? `${outcome.jobStatus}: ${outcome.problem}` : (outcome.jobStatus ?? String(outcome.status)),
    seconds: outcome.seconds ?? 0,
  };
}

/** What the components left in their TMPDIR (tsx-* is the TypeScript loader's own compile cache). */
async function tempFiles(tmpDir: string): Promise<string[]> {
  const names = await fs.readdir(tmpDir, { recursive: true }).catch(() => [] as string[]);
  return names.filter((n) => !n.split(path.sep)[0]!.startsWith('tsx-')).map((n) => path.join(tmpDir, n));
}

/**
 * Files of this run (their names carry its token) modified since it began, anywhere a path in an upload
 * could have led a write: the temporary folder the data folder sits in, the project, /etc and the home folder.
 */
async function filesOutside(dataDir: string, token: string, since: number): Promise<string[]> {
  const found: string[] = [];
  const skip = new Set([
    path.resolve(dataDir),
    path.join(PROJECT_ROOT, 'node_modules'),
    path.join(PROJECT_ROOT, '.git'),
    path.join(PROJECT_ROOT, '.tools'),
  ]);
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 12 || skip.has(dir)) return;
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) await walk(full, depth + 1);
      else if (e.name.includes(token)) {
        const stat = await fs.lstat(full).catch(() => null);
        if (stat && stat.mtimeMs >= since - 1000) found.push(full);
      }
    }
  };
  for (const root of new Set([path.dirname(path.resolve(dataDir)), os.tmpdir(), PROJECT_ROOT, '/etc'])) await walk(root, 0);
  // The file system's root itself, where enough "../" from any folder ends.
  for (const name of await fs.readdir('/').catch(() => [] as string[])) if (name.includes(token)) found.push(path.join('/', name));
  return found;
}
