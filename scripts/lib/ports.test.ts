import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../common/config.js';
import { portFromEnv } from './ports.js';

describe('portFromEnv', () => {
  it('takes any port from 0 to 65535 and falls back when unset or blank', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.constantFrom('', ' ', '\t'), (port, pad) => {
        expect(portFromEnv('REDIS_PORT', 6379, { REDIS_PORT: `${pad}${port}${pad}` })).toBe(port);
      }),
      { seed: 16_7, numRuns: 200 },
    );
    expect(portFromEnv('REDIS_PORT', 6379, {})).toBe(6379);
    expect(portFromEnv('REDIS_PORT', 6379, { REDIS_PORT: '  ' })).toBe(6379);
  });

  it('refuses anything that is not a port with an error naming the variable, never NaN', () => {
    const notPorts = fc.oneof(
      fc.integer({ min: 65536, max: 2 ** 31 }).map(String),
      fc.integer({ min: -(2 ** 31), max: -1 }).map(String),
      fc
        .double({ noNaN: true, min: 0.01, max: 65535 })
        .filter((n) => !Number.isInteger(n))
        .map(String),
      fc.stringMatching(/^[a-z:/.]{1,12}$/).filter((s) => s.trim() !== ''),
      fc.constantFrom('NaN', 'Infinity', '0x1F90', '80a', ':7233', 'localhost:6379'),
    );
    fc.assert(
      fc.property(notPorts, fc.constantFrom('REDIS_PORT', 'TEMPORAL_PORT', 'API_PORT'), (value, name) => {
        let error: unknown;
        try {
          portFromEnv(name, 1, { [name]: value });
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toContain(`${name}=${JSON.stringify(value)} is not a port`);
      }),
      { seed: 16_7, numRuns: 300 },
    );
  });
});
