import { describe, expect, it } from 'vitest';
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

  it('reads API_CORS_ORIGINS as a list of origins and names it when one is not a URL', () => {
    expect(loadConfig(apiSchema, { JWT_SECRET: secret }).API_CORS_ORIGINS).toEqual([]);
    const origins = loadConfig(apiSchema, { JWT_SECRET: secret, API_CORS_ORIGINS: 'https://tools.example/app, http://localhost:5173' });
    expect(origins.API_CORS_ORIGINS).toEqual(['https://tools.example', 'http://localhost:5173']);
    expect(() => loadConfig(apiSchema, { JWT_SECRET: secret, API_CORS_ORIGINS: 'https://ok.example,not a url' })).toThrow(
      /API_CORS_ORIGINS.*comma-separated list of origins/,
    );
  });
});
