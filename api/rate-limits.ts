import type { Response } from 'express';
import type { RedisClient } from '../common/redis.js';
import type { FailureCode } from '../common/failures.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * A per-key limit shared by every API process through Redis: `points` requests per key in each window
 * of `durationSeconds`. While Redis is unreachable each process enforces the same limit on its own
 * (the insurance limiter), so an outage neither opens the gate nor shuts out everyone.
 */
export class SharedRateLimit {
  private readonly limiter: RateLimiterRedis;

  constructor(redis: RedisClient, options: { name: string; points: number; durationSeconds: number }) {
    const base = { points: options.points, duration: options.durationSeconds, keyPrefix: `ratelimit:${options.name}` };
    this.limiter = new RateLimiterRedis({
      ...base,
      storeClient: redis,
      // A command waiting in ioredis's offline queue would hold the request; fail over to memory at once.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(base),
    });
  }

  /** Takes one request for key: 0 when allowed, else the milliseconds until the key may try again. */
  async take(key: string): Promise<number> {
    try {
      await this.limiter.consume(key);
      return 0;
    } catch (err) {
      if (err instanceof RateLimiterRes) return Math.max(1, err.msBeforeNext);
      throw err;
    }
  }
}

/**
 * The upload limit as configured (API_SUBMIT_BURST, API_SUBMIT_PER_MINUTE): `burst` jobs per window of
 * burst / perMinute minutes, so a user may send `burst` at once and `perMinute` a minute on average.
 */
export function submitRateLimit(redis: RedisClient, burst: number, perMinute: number): SharedRateLimit {
  return new SharedRateLimit(redis, { name: 'submit', points: burst, durationSeconds: Math.max(1, Math.round((burst / perMinute) * 60)) });
}

/**
 * Resumable uploads one user may create (POST /api/uploads): as many files as the jobs of the upload limit
 * can name (API_SUBMIT_BURST × UPLOAD_MAX_FILES per the same window), so creating uploads cannot flood the
 * store any faster than starting jobs could.
 */
export function uploadCreateRateLimit(redis: RedisClient, burst: number, perMinute: number, maxFiles: number): SharedRateLimit {
  return new SharedRateLimit(redis, {
    name: 'upload-create',
    points: burst * maxFiles,
    durationSeconds: Math.max(1, Math.round((burst / perMinute) * 60)),
  });
}

/** Answers 429 with Retry-After and the API's error body. */
export function sendRateLimited(res: Response, waitMs: number, code: FailureCode, what: string): void {
  const seconds = Math.ceil(waitMs / 1000);
  res.setHeader('retry-after', String(seconds));
  res.status(429).json({ error: { code, message: `${what}; try again in ${seconds} s.` } });
}
