import type { NextFunction, Request, Response } from 'express';

/**
 * CORS with an allowlist. A request from a listed origin gets Access-Control-Allow-Origin for exactly
 * that origin (never `*`: the API takes bearer tokens); any other origin gets no CORS header, so its page
 * cannot read the answer. Preflights from listed origins are answered here with 204.
 */
export function corsAllowlist(origins: readonly string[]): (req: Request, res: Response, next: NextFunction) => void {
  // Parsed and checked with the rest of the config (API_CORS_ORIGINS in common/config.ts).
  const allowed = new Set(origins);
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.headers.origin;
    if (!origin || !allowed.has(origin)) {
      next();
      return;
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', 'Retry-After, Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      // HEAD, PATCH, DELETE and the Upload-* headers: resumable uploads (tus, api/resumable-uploads.ts).
      res.setHeader('access-control-allow-methods', 'GET, POST, HEAD, PATCH, DELETE');
      res.setHeader(
        'access-control-allow-headers',
        'Authorization, Content-Type, Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata',
      );
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
