import http from 'node:http';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { z } from 'zod';
import { PROJECT_ROOT, type ApiConfig } from '../common/config.js';
import { JobLog } from '../common/job-log.js';
import { OwnerId } from '../common/progress.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { issueDevToken, requireOwner, TokenVerifier } from './auth.js';
import { historyRouter } from './history-router.js';
import { JobService } from './job-service.js';
import { jobsRouter } from './jobs-router.js';
import { SocketHub } from './socket-hub.js';
import { UploadError } from './upload.js';

export interface ApiDeps {
  config: ApiConfig;
  temporal: Client;
  /** Reads snapshots and replay logs, and publishes reconciled events. */
  redis: Redis;
  /** Dedicated connection in subscriber mode, shared by every socket of this process. */
  subscriber: Redis;
  storage: AssetStorage;
  log: Logger;
}

export interface ApiServer {
  server: http.Server;
  hub: SocketHub;
  close(): Promise<void>;
}

/** Builds the HTTP + WebSocket server: REST under /api, the socket at /ws, the web page at /. */
export function createApiServer(deps: ApiDeps): ApiServer {
  const { config, log } = deps;
  const verifier = new TokenVerifier(config);
  const jobs = new JobService(deps.temporal);
  const jobLog = new JobLog(deps.redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });
  const app = express();
  app.disable('x-powered-by');
  app.use(pinoHttp({ logger: log, autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' } }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await Promise.allSettled([deps.redis.ping(), deps.temporal.workflowService.getSystemInfo({})]);
    const [redis, temporal] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unreachable'));
    const ready = redis === 'ok' && temporal === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', redis, temporal });
  });

  if (config.DEV_LOGIN) {
    const DevLogin = z.object({ user: OwnerId });
    app.post('/api/auth/dev-login', express.json({ limit: '4kb' }), (req, res) => {
      const body = DevLogin.safeParse(req.body);
      if (!body.success) {
        res.status(400).json({ error: { code: 'BAD_USER', message: 'Send {"user":"name"} with letters, digits and . _ @ - only.' } });
        return;
      }
      res.json({ token: issueDevToken(config, body.data.user), user: body.data.user });
    });
  }

  app.use(
    '/api/jobs',
    requireOwner(verifier),
    jobsRouter({ jobs, jobLog, storage: deps.storage, uploadMaxBytes: config.UPLOAD_MAX_BYTES }),
  );
  app.use('/api/jobs', requireOwner(verifier), historyRouter({ jobs, temporal: deps.temporal }));
  app.use(express.static(path.join(PROJECT_ROOT, 'web', 'dist'), { index: 'index.html' }));
  app.use(express.static(path.join(PROJECT_ROOT, 'web', 'public'), { index: 'index.html' }));

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: 'No such route.' } });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof UploadError) {
      res.status(err.status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    req.log.error({ err }, 'request failed');
    if (res.headersSent) return;
    res.status(500).json({
      error: { code: 'INTERNAL', message: 'Something went wrong on the server; try again, and tell an engineer if it keeps happening.' },
    });
  });

  const server = http.createServer(app);
  const hub = new SocketHub({ server, verifier, subscriber: deps.subscriber, jobLog, jobs, log });
  return {
    server,
    hub,
    async close() {
      await hub.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
