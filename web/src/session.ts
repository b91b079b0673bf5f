import { z } from 'zod';
import { OwnerId } from '../../common/progress.js';
import { ApiError, errorFrom } from './api-client.js';
import { DevLoginBody } from './server-frames.js';

/** A signed-in artist: the API's JWT and the name it was issued to. */
export interface Session {
  token: string;
  user: string;
  /** ms since epoch when the token expires, from its `exp` claim; null when it has none. */
  expiresAt: number | null;
}

/**
 * How the page gets a token. The local stack uses the API's dev login; a studio plugs in its identity
 * provider by defining `window.assetFarmIdentity` (see web/README.md) in a script served before the page's
 * own, for example web/public/identity.js. Whatever it returns must be a JWT the API verifies
 * (JWT_ALGORITHM / JWT_PUBLIC_KEY / JWT_ISSUER / JWT_AUDIENCE).
 */
export interface IdentityProvider {
  /** Button text, e.g. "Sign in with Studio SSO". */
  label: string;
  /** True when the provider needs the user-name field (the dev login does, single sign-on does not). */
  asksForUser: boolean;
  signIn(user: string): Promise<{ token: string; user: string }>;
}

declare global {
  interface Window {
    assetFarmIdentity?: IdentityProvider;
  }
}

/** The local stack's dev login (POST /api/auth/dev-login, enabled with DEV_LOGIN=true). */
export const devLogin: IdentityProvider = {
  label: 'Sign in',
  asksForUser: true,
  async signIn(user) {
    const name = OwnerId.safeParse(user);
    if (!name.success) throw new ApiError('BAD_USER', 400, 'Use letters, digits and . _ @ - only in the user name.');
    let response: Response;
    try {
      response = await fetch('/api/auth/dev-login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: name.data }),
      });
    } catch {
      throw new ApiError('NETWORK', 0, "Can't reach the asset-farm server. Check your network connection and try again.");
    }
    if (response.status === 404)
      throw new ApiError('NO_DEV_LOGIN', 404, 'This server has no dev login. Ask an engineer how to sign in with the studio account.');
    if (!response.ok) throw await errorFrom(response);
    const body = DevLoginBody.safeParse(await response.json().catch(() => null));
    if (!body.success) throw new ApiError('BAD_RESPONSE', response.status, 'The sign-in answer was not understood; reload the page.');
    return body.data;
  },
};

export function identityProvider(): IdentityProvider {
  return window.assetFarmIdentity ?? devLogin;
}

const STORAGE_KEY = 'asset-farm.session';
const Stored = z.object({ token: z.string().min(1), user: z.string().min(1) });
const JwtClaims = z.object({ exp: z.number().optional() });

/** The token's expiry from its payload; the API still verifies the signature, this only times the sign-out. */
function expiryOf(token: string): number | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JwtClaims.safeParse(JSON.parse(json));
    return claims.success && claims.data.exp ? claims.data.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function createSession(token: string, user: string): Session {
  return { token, user, expiresAt: expiryOf(token) };
}

/** The stored session if there is one and it has not expired: a reload keeps the artist signed in. */
export function loadSession(now = Date.now()): Session | null {
  let raw: unknown;
  try {
    raw = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
  } catch {
    raw = null;
  }
  const stored = Stored.safeParse(raw);
  if (!stored.success) return null;
  const session = createSession(stored.data.token, stored.data.user);
  if (session.expiresAt !== null && session.expiresAt <= now) {
    clearSession();
    return null;
  }
  return session;
}

export function saveSession(session: Session): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify({ token: session.token, user: session.user }));
}

export function clearSession(): void {
  localStorage.removeItem(STORAGE_KEY);
}
