import { describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/assets/seeded-random.js';
import { apiSchema, ConfigError, hpcWorkerSchema, loadConfig } from './config.js';

const secret = 'a'.repeat(40);

describe('loadConfig', () => {
  it('applies defaults and coerces numbers and booleans from strings', () => {
    const config = loadConfig(apiSchema, { JWT_SECRET: secret, API_PORT: '4000', DEV_LOGIN: 'true' });
    expect(config).toMatchObject({ API_PORT: 4000, DEV_LOGIN: true, TEMPORAL_NAMESPACE: 'asset-farm', PROGRESS_MAX_RATE: 10 });
  });

  it('names every bad variable and what it expects, without printing secrets', () => {
    let error: unknown;
    try {
      loadConfig(apiSchema, { JWT_SECRET: 'short-secret-value', API_PORT: 'http', REDIS_URL: 'localhost:6379' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('API_PORT ("http")');
    expect(message).toContain('REDIS_URL ("localhost:6379"): must start with redis://');
    expect(message).toContain('JWT_SECRET (set (hidden)): must be at least 32 characters');
    expect(message).not.toContain('short-secret-value');
  });

  it('requires a verification key that fits the algorithm', () => {
    expect(() => loadConfig(apiSchema, {})).toThrow(/JWT_SECRET \(unset\): is required/);
    expect(() => loadConfig(apiSchema, { JWT_ALGORITHM: 'RS256' })).toThrow(
      /JWT_PUBLIC_KEY \(unset\): is required when JWT_ALGORITHM=RS256/,
    );
    expect(() => loadConfig(apiSchema, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY: 'pem', DEV_LOGIN: 'true' })).toThrow(/DEV_LOGIN/);
  });

  it('treats empty values as unset, as compose files and .env produce them', () => {
    expect(loadConfig(hpcWorkerSchema, { HPC_MAX_CONCURRENT_ACTIVITIES: '' }).HPC_MAX_CONCURRENT_ACTIVITIES).toBeGreaterThan(0);
    expect(() => loadConfig(hpcWorkerSchema, { HPC_MAX_CONCURRENT_ACTIVITIES: '0' })).toThrow(/HPC_MAX_CONCURRENT_ACTIVITIES/);
  });

  it('names BLENDER_PATH when it is not an executable, and a PREVIEW_ variable out of range', () => {
    expect(() => loadConfig(hpcWorkerSchema, { BLENDER_PATH: '/no/such/blender' })).toThrow(
      /BLENDER_PATH \("\/no\/such\/blender"\): must be an executable Blender/,
    );
    expect(loadConfig(hpcWorkerSchema, { BLENDER_PATH: process.execPath }).BLENDER_PATH).toBe(process.execPath);
    expect(() => loadConfig(hpcWorkerSchema, { PREVIEW_FRAMES: '0' })).toThrow(/PREVIEW_FRAMES/);
    expect(() => loadConfig(hpcWorkerSchema, { PREVIEW_SIZE: '4096' })).toThrow(/PREVIEW_SIZE/);
    expect(loadConfig(hpcWorkerSchema, {})).toMatchObject({ PREVIEW_FRAMES: 16, PREVIEW_SIZE: 256, PREVIEW_SAMPLES: 8 });
  });

  it('plans turntables unless TURNTABLES turns them off, and names a value it cannot read', () => {
    expect(loadConfig(apiSchema, { JWT_SECRET: secret }).TURNTABLES).toBe(true);
    for (const off of ['false', '0', 'no']) expect(loadConfig(apiSchema, { JWT_SECRET: secret, TURNTABLES: off }).TURNTABLES).toBe(false);
    expect(() => loadConfig(apiSchema, { JWT_SECRET: secret, TURNTABLES: 'off' })).toThrow(/TURNTABLES \("off"\)/);
  });

  it('reads API_CORS_ORIGINS as a list of origins and names it when one is not a URL', () => {
    expect(loadConfig(apiSchema, { JWT_SECRET: secret }).API_CORS_ORIGINS).toEqual([]);
    const origins = loadConfig(apiSchema, { JWT_SECRET: secret, API_CORS_ORIGINS: 'https://tools.example/app, http://localhost:5173' });
    expect(origins.API_CORS_ORIGINS).toEqual(['https://tools.example', 'http://localhost:5173']);
    expect(() => loadConfig(apiSchema, { JWT_SECRET: secret, API_CORS_ORIGINS: 'https://ok.example,not a url' })).toThrow(
      /API_CORS_ORIGINS.*comma-separated list of origins/,
    );
  });

  it('validates STORAGE=s3 at start, naming the bad variable and never printing the secret (seeded variety)', () => {
    const random = seededRandom(2026);
    const good = {
      JWT_SECRET: secret,
      STORAGE: 's3',
      S3_ENDPOINT: 'http://127.0.0.1:7070',
      S3_BUCKET: 'asset-farm',
      S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      S3_SECRET_ACCESS_KEY: 'very-secret-value-123',
      S3_FORCE_PATH_STYLE: 'true',
    };
    expect(loadConfig(apiSchema, good)).toMatchObject({ STORAGE: 's3', S3_FORCE_PATH_STYLE: true, S3_REGION: 'us-east-1', S3_PREFIX: '' });
    expect(loadConfig(hpcWorkerSchema, { STORAGE: 'local' }).STORAGE).toBe('local');
    const breakages: [string, (env: Record<string, string>) => void][] = [
      ['S3_BUCKET', (env) => delete env.S3_BUCKET],
      ['S3_BUCKET', (env) => (env.S3_BUCKET = ['Upper', 'a', 'has_underscore', 'x'.repeat(64), '-dash'][Math.floor(random() * 5)]!)],
      ['S3_ENDPOINT', (env) => (env.S3_ENDPOINT = ['127.0.0.1:7070', 'not a url', 's3 host'][Math.floor(random() * 3)]!)],
      ['S3_SECRET_ACCESS_KEY', (env) => delete env.S3_SECRET_ACCESS_KEY],
      ['S3_ACCESS_KEY_ID', (env) => delete env.S3_ACCESS_KEY_ID],
      ['S3_FORCE_PATH_STYLE', (env) => (env.S3_FORCE_PATH_STYLE = ['maybe', 'TRUE!', '2'][Math.floor(random() * 3)]!)],
      ['S3_PREFIX', (env) => (env.S3_PREFIX = ['no-slash', '/leading/', 'a//'][Math.floor(random() * 3)]!)],
      ['STORAGE', (env) => (env.STORAGE = ['S3', 'nfs', 'disk'][Math.floor(random() * 3)]!)],
    ];
    for (let i = 0; i < 40; i++) {
      const [variable, breakIt] = breakages[Math.floor(random() * breakages.length)]!;
      const env: Record<string, string> = { ...good };
      breakIt(env);
      for (const schema of [apiSchema, hpcWorkerSchema]) {
        let message = '';
        try {
          loadConfig(schema, env);
        } catch (err) {
          message = (err as Error).message;
        }
        expect(message, `${variable} ${JSON.stringify(env[variable])}`).toContain(`${variable} (`);
        expect(message).not.toContain('very-secret-value-123');
      }
    }
  });
});
