import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { redactUrl } from '../common/logger.js';

/** Health checks and scrapes would be most of the lines and say nothing. */
const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

/** The route a request matched (`/api/jobs/:id`), or its path without the query when none did. */
function routeOf(req: IncomingMessage): string {
  const express = req as Partial<Request>;
  if (express.route && typeof express.route.path === 'string') return `${express.baseUrl ?? ''}${express.route.path}`;
  return (express.originalUrl ?? req.url ?? '').split('?')[0] ?? '';
}

/**
 * One short line per request at INFO: `GET /api/jobs/:id 200 12ms` with method, route, status,
 * responseTime, jobId and owner as fields. Request and response headers are added only when the
 * logger is at debug (credentials in them are still redacted: common/logger.ts), and the URL's
 * credential-like query parameters never reach a line.
 */
export function requestLog(log: Logger) {
  const withHeaders = () => log.isLevelEnabled('debug');
  return pinoHttp({
    logger: log,
    // Lines written through req.log (errors) carry only the request id, not a second copy of the request.
    quietReqLogger: true,
    autoLogging: { ignore: (req) => UNLOGGED.has((req.url ?? '').split('?')[0] ?? '') },
    serializers: {
      req: (req: { method?: string; url?: string; headers?: unknown; id?: unknown }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url ?? ''),
        ...(withHeaders() ? { headers: req.headers } : {}),
      }),
      res: (res: { statusCode?: number; headers?: unknown }) => ({
        statusCode: res.statusCode,
        ...(withHeaders() ? { headers: res.headers } : {}),
      }),
    },
    // At info the message and these fields are the whole line; the full request object only at debug.
    customSuccessObject: (req, res, value: Record<string, unknown>) => summary(req, res, value, withHeaders()),
    customErrorObject: (req, res, err, value: Record<string, unknown>) => summary(req, res, value, withHeaders()),
    customSuccessMessage: (req, res, responseTime) => `${req.method} ${routeOf(req)} ${res.statusCode} ${responseTime}ms`,
    customErrorMessage: (req, res) => `${req.method} ${routeOf(req)} ${res.statusCode} failed`,
    // Every request line says whose it was and which job it touched.
    customProps: (req, res) => {
      const owner = (res as ServerResponse & { locals?: { owner?: { id?: string } } }).locals?.owner?.id;
      const jobId = /^\/api\/jobs\/([A-Za-z0-9._@-]+)/.exec((req as Partial<Request>).originalUrl ?? req.url ?? '')?.[1];
      return { ...(owner ? { owner } : {}), ...(jobId ? { jobId } : {}) };
    },
  });
}

function summary(req: IncomingMessage, res: ServerResponse, value: Record<string, unknown>, full: boolean): Record<string, unknown> {
  const short = { method: req.method, route: routeOf(req), status: res.statusCode, responseTime: value.responseTime };
  if (full) return { ...value, ...short, req };
  return { ...short, ...(value.err ? { err: value.err } : {}) };
}
