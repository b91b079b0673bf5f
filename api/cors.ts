import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';

/**
 * Origins allowed to call the API from another site's page: a comma-separated list of exact origins
 * (`https://tools.studio.example,http://localhost:5173`). The default is none: the web page is served by
 * the API itself (same origin), so browsers need no CORS header at all.
 */
const CorsOrigins = z
  .string()
  .optional()
  .transform((raw) =>
    (raw ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.url().transform((u) => new URL(u).origin)));

/**
 * CORS with an allowlist. A request from a listed origin gets Access-Control-Allow-Origin for exactly
 * that origin (never `*`: the API takes bearer tokens); any other origin gets no CORS header, so its page
 * cannot read the answer. Preflights from listed origins are answered here with 204.
 */
export function corsAllowlist(raw: string | undefined): (req: Request, res: Response, next: NextFunction) => void {
  const parsed = CorsOrigins.safeParse(raw);
  if (!parsed.success)
    throw new Error(`API_CORS_ORIGINS must be a comma-separated list of origins like https://tools.example (got ${raw}).`);
  const allowed = new Set(parsed.data);
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.headers.origin;
    if (!origin || !allowed.has(origin)) {
      next();
      return;
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', 'Retry-After, Location');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.setHeader('access-control-allow-methods', 'GET, POST');
      res.setHeader('access-control-allow-headers', 'Authorization, Content-Type');
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
