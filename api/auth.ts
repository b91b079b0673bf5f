import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import type { ApiConfig } from '../common/config.js';
import { OwnerId } from '../common/progress.js';
import { FAILURES } from '../common/failures.js';

/** Who a request or socket acts for: the JWT subject. */
export interface JobOwner {
  id: OwnerId;
  /** When the token stops being valid (ms since epoch); open sockets are closed then. */
  expiresAt: number;
  /** The token's `team` claim, when the identity provider sets one: the team shares one slice of the farm. */
  team?: string;
  /** The token's `roles` claim (e.g. API_URGENT_ROLE). */
  roles?: string[];
}

/** Why a token was refused; each maps to an HTTP status and a WebSocket close code (docs/PROTOCOL.md). */
export class AuthError extends Error {
  constructor(
    readonly code: typeof FAILURES.AUTH_MISSING.code | typeof FAILURES.AUTH_INVALID.code | typeof FAILURES.AUTH_EXPIRED.code,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

const Claims = z.object({
  sub: OwnerId,
  exp: z.number(),
  iat: z.number().optional(),
  // Optional claims the studio's identity provider may add; a malformed one is ignored, not fatal.
  team: z
    .string()
    .regex(/^[A-Za-z0-9._@-]{1,64}$/)
    .optional()
    .catch(undefined),
  roles: z.array(z.string().max(200)).max(100).optional().catch(undefined),
});

type VerifierConfig = Pick<
  ApiConfig,
  'JWT_SECRET' | 'JWT_PUBLIC_KEY' | 'JWT_ALGORITHM' | 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_MAX_LIFETIME_SECONDS'
>;

/**
 * Verifies JWTs with the one algorithm configured; `alg: none` and algorithm switching are refused by
 * pinning it. Every token must say when it expires, no later than JWT_MAX_LIFETIME_SECONDS after it was
 * issued (or from now, when it does not say when it was issued), and name the configured issuer and
 * audience (required by the config with a public key: the identity provider signs tokens for other
 * applications with the same key).
 */
export class TokenVerifier {
  private readonly key: string;
  private readonly algorithm: jwt.Algorithm;

  constructor(private readonly config: VerifierConfig) {
    this.algorithm = config.JWT_ALGORITHM;
    const key = this.algorithm === 'HS256' ? config.JWT_SECRET : config.JWT_PUBLIC_KEY;
    if (!key) throw new Error(`No verification key configured for ${this.algorithm}`);
    this.key = key;
  }

  verify(token: string): JobOwner {
    let payload: unknown;
    try {
      payload = jwt.verify(token, this.key, {
        algorithms: [this.algorithm],
        ...(this.config.JWT_ISSUER ? { issuer: this.config.JWT_ISSUER } : {}),
        ...(this.config.JWT_AUDIENCE ? { audience: this.config.JWT_AUDIENCE } : {}),
      });
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw new AuthError(FAILURES.AUTH_EXPIRED.code, 'Your session has expired; sign in again.');
      throw new AuthError(FAILURES.AUTH_INVALID.code, 'The access token is not valid; sign in again.');
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success)
      throw new AuthError(FAILURES.AUTH_INVALID.code, 'The access token has no usable subject or expiry (sub, exp); sign in again.');
    const { sub, exp, iat } = claims.data;
    const maxSeconds = this.config.JWT_MAX_LIFETIME_SECONDS;
    if (exp - (iat ?? Date.now() / 1000) > maxSeconds || exp - Date.now() / 1000 > maxSeconds)
      throw new AuthError(
        'AUTH_INVALID',
        `The access token is valid for longer than the ${maxSeconds} s this server accepts; sign in again.`,
      );
    const { team, roles } = claims.data;
    return { id: sub, expiresAt: exp * 1000, ...(team ? { team } : {}), ...(roles ? { roles } : {}) };
  }
}

/** Issues tokens for the dev login (HS256 with the configured secret). Never enabled in production. */
export function issueDevToken(
  config: Pick<ApiConfig, 'JWT_SECRET' | 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_MAX_LIFETIME_SECONDS'>,
  user: OwnerId,
  ttlSeconds = 12 * 3600,
): string {
  if (!config.JWT_SECRET) throw new Error('Dev login needs JWT_SECRET');
  return jwt.sign({ sub: user }, config.JWT_SECRET, {
    algorithm: 'HS256',
    expiresIn: Math.min(ttlSeconds, config.JWT_MAX_LIFETIME_SECONDS),
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
  });
}

/** WebSocket subprotocol the server speaks; the token rides as a second entry `bearer.<jwt>`. */
export const SOCKET_PROTOCOL = 'asset-farm.v1';
const BEARER_PROTOCOL_PREFIX = 'bearer.';

/**
 * The bearer token of a request: the Authorization header, or for browsers' WebSockets (which cannot
 * set headers) a `bearer.<jwt>` entry in Sec-WebSocket-Protocol. Never the query string, which ends up in logs.
 */
export function bearerToken(headers: IncomingHttpHeaders): string | null {
  const auth = headers.authorization;
  if (auth) {
    const match = /^Bearer\s+(\S+)$/i.exec(auth);
    return match ? match[1]! : null;
  }
  const protocols = headers['sec-websocket-protocol'];
  if (protocols) {
    for (const entry of protocols.split(',')) {
      const trimmed = entry.trim();
      if (trimmed.startsWith(BEARER_PROTOCOL_PREFIX)) return trimmed.slice(BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return null;
}

/** Express middleware: sets res.locals.owner or answers 401 with a JSON error. */
export function requireOwner(verifier: TokenVerifier) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const token = bearerToken(req.headers);
    if (!token) {
      res.status(401).json({
        error: { code: FAILURES.AUTH_MISSING.code, message: 'Sign in first: this request needs an Authorization: Bearer token.' },
      });
      return;
    }
    try {
      res.locals.owner = verifier.verify(token);
      next();
    } catch (err) {
      const e = err instanceof AuthError ? err : new AuthError(FAILURES.AUTH_INVALID.code, 'The access token is not valid; sign in again.');
      res.status(401).json({ error: { code: e.code, message: e.message } });
    }
  };
}

/** The owner set by requireOwner. */
export function ownerOf(res: Response): JobOwner {
  return res.locals.owner as JobOwner;
}
