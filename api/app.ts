import http from 'node:http';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { RedisClient } from '../common/redis.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PROJECT_ROOT, type ApiConfig } from '../common/config.js';
import { JobLog } from '../common/job-log.js';
import { OwnerId } from '../common/progress.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { createApiMetrics, type ApiMetrics } from './api-metrics.js';
import { HpcQueueBook } from '../common/hpc-queue.js';
import { HpcQueueSweep } from './hpc-queue-sweep.js';
import { issueDevToken, requireOwner, TokenVerifier } from './auth.js';
import { BUILTIN_STAGES, type StageDescriptor } from '../common/stages.js';
import { historyRouter } from './history-router.js';
import { JobReconciler } from './job-reconciler.js';
import { JobService } from './job-service.js';
import { batchesRouter, jobsRouter, type JobsRouterDeps } from './jobs-router.js';
import { requestLog } from './request-log.js';
import { corsAllowlist } from './cors.js';
import { securityHeaders } from './security-headers.js';
import { SocketHub, type SocketHubOptions } from './socket-hub.js';
import { sendRateLimited, SharedRateLimit, submitRateLimit, uploadCreateRateLimit } from './rate-limits.js';
import { UploadError } from './upload.js';
import { FinishedUploads } from './finished-uploads.js';
import { resumableUploads } from './resumable-uploads.js';
import { UPLOADS_PATH } from '../common/uploads.js';
import { FAILURES, isStorageError } from '../common/failures.js';

/**
 * Past this much more, or this long, a refused body is cut off instead of read to its end; a client that
 * sends nothing for `idleMs` (it waits for the answer first) gets it then.
 */
const REFUSED_BODY_DRAIN = { bytes: 8 * 1024 * 1024, ms: 2000, idleMs: 250 };

/** Reads and drops what is left of a refused request body, until its end or REFUSED_BODY_DRAIN. */
function drainRefusedBody(req: Request): Promise<void> {
  return new Promise((resolve) => {
    let read = 0;
    let idle = setTimeout(() => done(), REFUSED_BODY_DRAIN.idleMs);
    const timer = setTimeout(() => done(), REFUSED_BODY_DRAIN.ms);
    function done(): void {
      clearTimeout(timer);
      clearTimeout(idle);
      req.off('data', onData).off('end', done).off('close', done);
      resolve();
    }
    function onData(chunk: Buffer): void {
      read += chunk.length;
      if (read > REFUSED_BODY_DRAIN.bytes) return done();
      clearTimeout(idle);
      idle = setTimeout(done, REFUSED_BODY_DRAIN.idleMs);
    }
    req.on('data', onData).once('end', done).once('close', done);
    req.resume();
  });
}

export interface ApiDeps {
  config: ApiConfig;
  temporal: Client;
  /** Reads snapshots and replay logs, and publishes reconciled events. */
  redis: RedisClient;
  /** Dedicated connection in subscriber mode, shared by every socket of this process. */
  subscriber: RedisClient;
  storage: AssetStorage;
  log: Logger;
  /** Socket timings, for tests; production uses the defaults and API_RECONCILE_INTERVAL_MS. */
  socketOptions?: SocketHubOptions;
  /** The stage registry new jobs are planned from (default the built-in stages; api/main.ts adds STAGES_CONFIG's). */
  stages?: readonly StageDescriptor[];
}

/** A partial upload nobody has written to for this long belongs to a request that is gone. */
const STALE_UPLOAD_MS = 60 * 60 * 1000;
const STALE_UPLOAD_SWEEP_MS = 10 * 60 * 1000;
/** How often the HPC queue lines are checked for jobs that ended without leaving them. */
const QUEUE_SWEEP_MS = 30_000;
/** Slowest upload rate the whole-request timeout allows for a largest upload (an idle timeout cuts stalls). */
const MIN_UPLOAD_BYTES_PER_SECOND = 16 * 1024;
/** Node's own request timeout: the floor for requests smaller than a largest upload. */
const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
const WEB_DIST = path.join(PROJECT_ROOT, 'web', 'dist');
const WEB_PUBLIC = path.join(PROJECT_ROOT, 'web', 'public');

export interface ApiServer {
  server: http.Server;
  hub: SocketHub;
  /** Prometheus metrics of this process, served apart from the app (api/main.ts, API_METRICS_PORT). */
  metrics: ApiMetrics;
  /** From now on /readyz answers 503 "draining": a balancer stops routing here while sockets stay open. */
  drain(): void;
  /** Closes every socket with 1012 (reconnect elsewhere) and stops the server. */
  close(): Promise<void>;
  /** Deletes partial uploads past their expiry now (the API also does it every 10 minutes); returns how many. */
  sweepExpiredUploads(): Promise<number>;
}

/** Builds the HTTP + WebSocket server: REST under /api, the socket at /ws, the web page at /. */
export function createApiServer(deps: ApiDeps): ApiServer {
  const { config, log } = deps;
  const verifier = new TokenVerifier(config);
  const stages = deps.stages ?? BUILTIN_STAGES;
  const jobs = new JobService(deps.temporal, deps.storage, stages);
  const jobLog = new JobLog(deps.redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });
  const queueBook = new HpcQueueBook(deps.redis);
  const reconciler = new JobReconciler({ jobLog, log, hpcQueue: queueBook });
  // The hub is built after the app; the gauges read it only when scraped.
  const built: { hub?: SocketHub; draining?: boolean } = {};
  const metrics = createApiMetrics({
    stats: () => built.hub?.stats() ?? { sockets: 0, channels: 0, patterns: 0 },
    queueShares: async () =>
      Promise.all((await queueBook.queues()).map(async (queue) => ({ queue, shares: await queueBook.shares(queue) }))),
  });
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders([path.join(WEB_DIST, 'index.html'), path.join(WEB_PUBLIC, 'index.html')]));
  app.use('/api', corsAllowlist(config.API_CORS_ORIGINS));
  app.use(requestLog(log));
  // Every JSON body the API accepts is small; uploads are multipart or tus and streamed (api/upload.ts,
  // api/resumable-uploads.ts). A job start names up to UPLOAD_MAX_FILES files of 255-byte names.
  const smallJson = express.json({ limit: '16kb' });
  const jobStartJson = express.json({ limit: '256kb' });
  // A batch names the files of up to MAX_BATCH_ASSETS assets.
  const batchStartJson = express.json({ limit: '4mb' });
  app.use('/api', (req, res, next) =>
    (req.method === 'POST' && req.path === '/jobs'
      ? jobStartJson
      : req.method === 'POST' && req.path === '/batches'
        ? batchStartJson
        : smallJson)(req, res, next),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    // A draining process says so first, so the balancer stops sending it new sockets before they are closed.
    if (built.draining) {
      res.status(503).json({ status: 'draining' });
      return;
    }
    const checks = await Promise.allSettled([deps.redis.ping(), deps.temporal.workflowService.getSystemInfo({})]);
    const [redis, temporal] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unreachable'));
    const ready = redis === 'ok' && temporal === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', redis, temporal });
  });

  if (config.DEV_LOGIN) {
    const DevLogin = z.object({ user: OwnerId });
    // Per client address, shared by every API process: a token for anyone must not be free to farm.
    const loginLimit = new SharedRateLimit(deps.redis, { name: 'dev-login', points: config.API_LOGIN_PER_MINUTE, durationSeconds: 60 });
    app.post('/api/auth/dev-login', async (req, res) => {
      const waitMs = await loginLimit.take(req.ip ?? 'unknown');
      if (waitMs > 0) {
        sendRateLimited(res, waitMs, FAILURES.TOO_MANY_LOGINS.code, 'Too many sign-ins from this address');
        return;
      }
      const body = DevLogin.safeParse(req.body);
      if (!body.success) {
        res
          .status(400)
          .json({ error: { code: FAILURES.BAD_USER.code, message: 'Send {"user":"name"} with letters, digits and . _ @ - only.' } });
        return;
      }
      res.json({ token: issueDevToken(config, body.data.user), user: body.data.user });
    });
  }

  const finishedUploads = new FinishedUploads(deps.redis, config.UPLOAD_RESUME_SECONDS);
  const resumable = resumableUploads({
    storage: deps.storage,
    uploads: finishedUploads,
    config,
    maxBytes: config.UPLOAD_MAX_BYTES,
    corsOrigins: config.API_CORS_ORIGINS,
    createLimit: uploadCreateRateLimit(deps.redis, config.API_SUBMIT_BURST, config.API_SUBMIT_PER_MINUTE, config.UPLOAD_MAX_FILES),
    expiryMs: config.UPLOAD_RESUME_SECONDS * 1000,
    log,
  });
  app.use(UPLOADS_PATH, requireOwner(verifier), resumable.router);
  const jobRoutes: JobsRouterDeps = {
    finishedUploads,
    jobs,
    jobLog,
    reconciler,
    storage: deps.storage,
    uploadLimits: { maxBytes: config.UPLOAD_MAX_BYTES, maxFiles: config.UPLOAD_MAX_FILES },
    submitLimit: submitRateLimit(deps.redis, config.API_SUBMIT_BURST, config.API_SUBMIT_PER_MINUTE),
    onJobStarted: (preset) => metrics.jobsStarted.inc({ preset }),
    scheduling: { urgentUsers: config.API_URGENT_USERS, urgentRole: config.API_URGENT_ROLE, weights: config.FAIR_SHARE_WEIGHTS },
  };
  app.use('/api/jobs', requireOwner(verifier), jobsRouter(jobRoutes));
  app.use('/api/batches', requireOwner(verifier), batchesRouter(jobRoutes));
  app.use('/api/jobs', requireOwner(verifier), historyRouter({ jobs, temporal: deps.temporal, stages }));
  // The page's KTX2 transcoder worker (web/src/model-viewer.ts): its own CSP, allowing the string compilation
  // its Emscripten bindings need in that worker only; it fetches nothing (the page posts it the WebAssembly).
  app.use('/basis/ktx2-worker.js', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'");
    next();
  });
  app.use(express.static(WEB_DIST, { index: 'index.html' }));
  app.use(express.static(WEB_PUBLIC, { index: 'index.html' }));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: FAILURES.NOT_FOUND.code, message: 'No such route.' } });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof UploadError) {
      const answer = () => res.status(err.status).json({ error: { code: err.code, message: err.message } });
      if (err.status !== 413 || req.complete) return void answer();
      // Refused mid-body (too large): end the connection instead of reading the rest of a huge body. A
      // client still sending when the socket closes sees a broken pipe, not the 413 (Node's fetch, curl), so
      // the rest is read and dropped first, up to a bound: an upload a little over the limit reads its answer.
      res.setHeader('connection', 'close');
      void drainRefusedBody(req).then(answer);
      return;
    }
    // The router's decoding of a path parameter with a broken % escape (e.g. /api/jobs/%E0%A4%A).
    if (err instanceof URIError) {
      res.status(400).json({
        error: { code: FAILURES.BAD_URL.code, message: 'The address has a malformed % escape; a % must start a valid escape like %20.' },
      });
      return;
    }
    // body-parser's own errors (too large, not JSON) carry a 4xx status and a type.
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const tooLarge = status === 413;
      res.status(status).json({
        error: {
          code: tooLarge ? FAILURES.BODY_TOO_LARGE.code : FAILURES.BAD_REQUEST.code,
          message: tooLarge ? 'The request body is too large; JSON bodies are limited to 16 KiB.' : 'The request body is not valid JSON.',
        },
      });
      return;
    }
    req.log.error({ err }, 'request failed');
    if (res.headersSent) return;
    if (isStorageError(err)) {
      // The upload folder is full, read-only or not ours: the farm's fault, and worth trying again later.
      res.status(507).json({ error: { code: FAILURES.STORAGE.code, message: `${FAILURES.STORAGE.message} ${FAILURES.STORAGE.advice}` } });
      return;
    }
    res.status(500).json({
      error: {
        code: FAILURES.INTERNAL.code,
        message: 'Something went wrong on the server; try again, and tell an engineer if it keeps happening.',
      },
    });
  });

  // Uploads may take as long as they need while they keep sending: a connection is cut after
  // API_REQUEST_IDLE_TIMEOUT_MS with nothing received, and a request as a whole only after the time the
  // largest upload takes at MIN_UPLOAD_BYTES_PER_SECOND (Node's default, 300 s, cut off a 20 MB upload at
  // 60 KB/s). ws takes upgraded sockets off the idle timeout; its own pings watch them.
  const server = http.createServer(
    {
      requestTimeout: Math.max(DEFAULT_REQUEST_TIMEOUT_MS, Math.ceil((config.UPLOAD_MAX_BYTES / MIN_UPLOAD_BYTES_PER_SECOND) * 1000)),
    },
    app,
  );
  server.setTimeout(config.API_REQUEST_IDLE_TIMEOUT_MS);
  const socketHub = new SocketHub({
    server,
    verifier,
    subscriber: deps.subscriber,
    jobLog,
    jobs,
    reconciler,
    hpcQueue: queueBook,
    log,
    metrics,
    options: {
      reconcileIntervalMs: config.API_RECONCILE_INTERVAL_MS,
      messagesPer10s: config.API_SOCKET_MESSAGES_PER_10S,
      maxSubscriptionsPerSocket: config.API_SOCKET_MAX_SUBSCRIPTIONS,
      maxSubscriptionsPerUser: config.API_USER_MAX_SUBSCRIPTIONS,
      maxSocketsPerUser: config.API_USER_MAX_SOCKETS,
      ownershipChecks: config.API_OWNERSHIP_CHECKS,
      ...deps.socketOptions,
    },
  });
  built.hub = socketHub;
  // Partial uploads of a process killed mid-request are never finished by anyone, and resumable ones
  // past UPLOAD_RESUME_SECONDS will not be resumed: sweep them now and then.
  const sweepStaleUploads = () =>
    Promise.all([
      deps.storage.removeStaleUploads(STALE_UPLOAD_MS).then(
        (removed) => removed > 0 && log.info({ removed }, 'removed partial uploads left by interrupted requests'),
        (err: unknown) => log.warn({ err }, 'could not sweep partial uploads'),
      ),
      resumable.sweep().then(
        (removed) => removed > 0 && log.info({ removed }, 'removed resumable uploads past their expiry'),
        (err: unknown) => log.warn({ err }, 'could not sweep expired resumable uploads'),
      ),
    ]);
  void sweepStaleUploads();
  const sweeper = setInterval(() => void sweepStaleUploads(), STALE_UPLOAD_SWEEP_MS);
  sweeper.unref();
  const queueSweep = new HpcQueueSweep({ book: queueBook, jobs, log, intervalMs: QUEUE_SWEEP_MS });
  return {
    server,
    hub: socketHub,
    metrics,
    drain() {
      built.draining = true;
    },
    sweepExpiredUploads: () => resumable.sweep(),
    async close() {
      clearInterval(sweeper);
      queueSweep.stop();
      await socketHub.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
