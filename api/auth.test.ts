import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/assets/seeded-random.js';
import { apiSchema, loadConfig } from '../common/config.js';
import { AuthError, issueDevToken, TokenVerifier } from './auth.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SECRET = 'b'.repeat(48);
const ISSUER = 'https://login.studio.example/';
const AUDIENCE = 'asset-farm';
const now = () => Math.floor(Date.now() / 1000);

function refusal(verifier: TokenVerifier, token: string): string | null {
  try {
    verifier.verify(token);
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthError);
    return (err as AuthError).code;
  }
}

describe('token rules', () => {
  const rsConfig = loadConfig(apiSchema, {
    JWT_ALGORITHM: 'RS256',
    JWT_PUBLIC_KEY: PUBLIC_PEM,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_MAX_LIFETIME_SECONDS: '3600',
  });
  const rs = new TokenVerifier(rsConfig);
  const sign = (claims: object, key = rsa.privateKey) => jwt.sign(claims, key, { algorithm: 'RS256' });

  it('accepts a token of the configured issuer and audience that expires within the maximum lifetime', () => {
    const owner = rs.verify(sign({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600 }));
    expect(owner.id).toBe('alice');
    expect(owner.expiresAt).toBeGreaterThan(Date.now());
  });

  it('refuses, in seeded variety, tokens without exp, living too long, for another audience or from another issuer', () => {
    const random = seededRandom(2718);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const figures: Record<string, number> = {};
    for (let i = 0; i < 120; i++) {
      const base = {
        sub: pick(['alice', 'bob', 'c.d@studio']),
        iss: ISSUER,
        aud: AUDIENCE,
        iat: now(),
        exp: now() + 60 + Math.floor(random() * 3000),
      };
      const fault = pick([
        'no exp',
        'too long',
        'too long without iat',
        'foreign aud',
        'no aud',
        'other issuer',
        'no issuer',
        'other key',
      ] as const);
      const claims: Record<string, unknown> = { ...base };
      if (fault === 'no exp') delete claims.exp;
      if (fault === 'too long') claims.exp = base.iat + 3601 + Math.floor(random() * 1e6);
      if (fault === 'too long without iat') {
        delete claims.iat;
        claims.exp = now() + 3601 + Math.floor(random() * 1e6);
      }
      if (fault === 'foreign aud') claims.aud = pick(['other-app', 'asset-farm-staging', ['wiki', 'chat']]);
      if (fault === 'no aud') delete claims.aud;
      if (fault === 'other issuer') claims.iss = pick(['https://evil.example/', 'https://login.studio.example', ISSUER + 'x']);
      if (fault === 'no issuer') delete claims.iss;
      const token = sign(claims, fault === 'other key' ? otherRsa.privateKey : rsa.privateKey);
      expect(refusal(rs, token), `${fault}: ${JSON.stringify(claims)}`).toBe('AUTH_INVALID');
      figures[fault] = (figures[fault] ?? 0) + 1;
    }
    // Every kind of fault was generated.
    expect(Object.keys(figures)).toHaveLength(8);
  });

  it('requires exp with HS256 too, and the dev login issues tokens within the maximum lifetime', () => {
    const config = loadConfig(apiSchema, { JWT_SECRET: SECRET, JWT_MAX_LIFETIME_SECONDS: '600' });
    const hs = new TokenVerifier(config);
    expect(refusal(hs, jwt.sign({ sub: 'alice' }, SECRET, { algorithm: 'HS256' }))).toBe('AUTH_INVALID');
    expect(refusal(hs, jwt.sign({ sub: 'alice' }, SECRET, { algorithm: 'HS256', expiresIn: 601 }))).toBe('AUTH_INVALID');
    expect(refusal(hs, jwt.sign({ sub: 'alice' }, SECRET, { algorithm: 'HS256', expiresIn: -1 }))).toBe('AUTH_EXPIRED');
    const dev = issueDevToken(config, 'alice');
    expect(hs.verify(dev).id).toBe('alice');
    expect((jwt.decode(dev) as { exp: number; iat: number }).exp - (jwt.decode(dev) as { iat: number }).iat).toBe(600);
  });

  it('reads a JWT_PUBLIC_KEY written on one line with literal \\n, and refuses at start one that is no key', () => {
    const oneLine = PUBLIC_PEM.trim().replace(/\n/g, '\\n');
    expect(oneLine).not.toContain('\n');
    const config = loadConfig(apiSchema, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY: oneLine, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
    // Started with it, the server accepts the tokens the key signs: never up and refusing every token.
    expect(new TokenVerifier(config).verify(sign({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: now() + 60 })).id).toBe('alice');
    const env = { JWT_ALGORITHM: 'RS256', JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE };
    for (const bad of [
      'pem',
      PUBLIC_PEM.slice(0, 80),
      PUBLIC_PEM.replace(/[A-Za-z]/, '!'),
      '-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----',
    ])
      expect(() => loadConfig(apiSchema, { ...env, JWT_PUBLIC_KEY: bad }), bad).toThrow(
        /JWT_PUBLIC_KEY \(set \(hidden\)\): is not a readable PEM public key/,
      );
    const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => loadConfig(apiSchema, { ...env, JWT_PUBLIC_KEY: ecPem })).toThrow(
      /is a ec key; JWT_ALGORITHM=RS256 needs an RSA public key/,
    );
  });

  it('refuses to start with a public key but no issuer or audience', () => {
    expect(() => loadConfig(apiSchema, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY: PUBLIC_PEM, JWT_ISSUER: ISSUER })).toThrow(
      /JWT_AUDIENCE \(unset\): is required when JWT_ALGORITHM=RS256/,
    );
    expect(() => loadConfig(apiSchema, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY: PUBLIC_PEM, JWT_AUDIENCE: AUDIENCE })).toThrow(
      /JWT_ISSUER \(unset\): is required when JWT_ALGORITHM=RS256/,
    );
  });
});
