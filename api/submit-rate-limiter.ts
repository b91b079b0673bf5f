/**
 * Per-user token bucket for job submissions: `burst` uploads at once, refilled at `perMinute`.
 * In memory, per API process: behind a balancer each process enforces it on its own share, which is
 * enough to stop a runaway script without a shared store.
 */
export class SubmitRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token for user; returns 0 when allowed, else the milliseconds until the next one. */
  take(user: string): number {
    const now = this.now();
    const refillPerMs = this.perMinute / 60_000;
    const bucket = this.buckets.get(user) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * refillPerMs);
    bucket.at = now;
    this.buckets.set(user, bucket);
    if (this.buckets.size > 10_000) this.prune(now, refillPerMs);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / refillPerMs);
  }

  /** Forgets users whose bucket has refilled: they are indistinguishable from new ones. */
  private prune(now: number, refillPerMs: number): void {
    for (const [user, b] of this.buckets) if (b.tokens + (now - b.at) * refillPerMs >= this.burst) this.buckets.delete(user);
  }
}
