import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apiSchema, isLoopbackHost, loadConfig } from './config.js';

const secret = 'a'.repeat(40);
const SEED = 18_01;

const byte = fc.integer({ min: 0, max: 255 });
const loopbackHosts = fc.oneof(
  fc.tuple(byte, byte, byte).map(([a, b, c]) => `127.${a}.${b}.${c}`),
  fc.constantFrom('localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'),
);
const exposedHosts = fc.oneof(
  fc
    .tuple(
      byte.filter((b) => b !== 127),
      byte,
      byte,
      byte,
    )
    .map((parts) => parts.join('.')),
  fc.constantFrom('0.0.0.0', '::', '[::]', 'fe80::1', '::ffff:10.0.0.5', 'farm.studio.example', 'localhost.example.com'),
);
const devLoginOn = fc.constantFrom('true', '1', 'yes');

describe('the dev login is for loopback only', () => {
  it('is accepted on any loopback address', () => {
    fc.assert(
      fc.property(loopbackHosts, devLoginOn, (host, on) => {
        expect(isLoopbackHost(host)).toBe(true);
        expect(loadConfig(apiSchema, { JWT_SECRET: secret, API_HOST: host, DEV_LOGIN: on }).DEV_LOGIN).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('is refused on any address other machines can reach, naming DEV_LOGIN and the address', () => {
    fc.assert(
      fc.property(exposedHosts, devLoginOn, (host, on) => {
        expect(isLoopbackHost(host)).toBe(false);
        expect(() => loadConfig(apiSchema, { JWT_SECRET: secret, API_HOST: host, DEV_LOGIN: on })).toThrow(
          `DEV_LOGIN (${JSON.stringify(on)}): must be false when API_HOST=${host} is reachable`,
        );
        // Exposing the app is allowed; only the dev login is refused there.
        expect(loadConfig(apiSchema, { JWT_SECRET: secret, API_HOST: host, DEV_LOGIN: 'false' }).API_HOST).toBe(host);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('is refused with NODE_ENV=production, even on loopback', () => {
    fc.assert(
      fc.property(loopbackHosts, devLoginOn, (host, on) => {
        expect(() => loadConfig(apiSchema, { JWT_SECRET: secret, API_HOST: host, DEV_LOGIN: on, NODE_ENV: 'production' })).toThrow(
          /DEV_LOGIN .*must be false when NODE_ENV=production/,
        );
      }),
      { seed: SEED, numRuns: 50 },
    );
  });

  it('listens on loopback unless told otherwise', () => {
    const config = loadConfig(apiSchema, { JWT_SECRET: secret });
    expect(config.API_HOST).toBe('127.0.0.1');
    expect(config.METRICS_HOST).toBe('127.0.0.1');
    expect(config.API_METRICS_PORT).toBe(0);
  });
});
