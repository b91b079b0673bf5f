import { describe, expect, it } from 'vitest';
import { SubmitRateLimiter } from './submit-rate-limiter.js';

describe('SubmitRateLimiter', () => {
  it('allows a burst, then one per refill interval, per user', () => {
    let now = 0;
    const limiter = new SubmitRateLimiter(2, 6, () => now); // 6 a minute: one every 10 s
    expect([limiter.take('a'), limiter.take('a')]).toEqual([0, 0]);
    expect(limiter.take('a')).toBe(10_000);
    expect(limiter.take('b')).toBe(0);
    now += 9_000;
    expect(limiter.take('a')).toBe(1_000);
    now += 1_000;
    expect(limiter.take('a')).toBe(0);
    now += 60_000;
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 10_000]);
  });
});
