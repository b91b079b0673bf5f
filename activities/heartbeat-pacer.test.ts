import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeartbeatPacer, MAX_HEARTBEAT_INTERVAL_MS } from './heartbeat-pacer.js';
import { ProgressReporter, type HeartbeatDetails } from './progress-reporter.js';

describe('HeartbeatPacer', () => {
  it('gives each stage the throttle interval until more stages run than the budget, then spreads them, capped', () => {
    const pacer = new HeartbeatPacer({ maxPerSecond: 100, minIntervalMs: 1000 });
    expect(pacer.intervalMs()).toBe(1000);
    const leave = Array.from({ length: 100 }, () => pacer.join());
    expect(pacer.intervalMs()).toBe(1000);
    leave.push(...Array.from({ length: 400 }, () => pacer.join()));
    // 500 stages within 100 heartbeats a second: each every 5 s.
    expect(pacer.intervalMs()).toBe(5000);
    leave.push(...Array.from({ length: 5000 }, () => pacer.join()));
    // Never slower than the cap, which keeps a live stage well inside its 30 s heartbeat timeout.
    expect(pacer.intervalMs()).toBe(MAX_HEARTBEAT_INTERVAL_MS);
    for (const l of leave) l();
    // Leaving twice counts once.
    leave[0]!();
    expect(pacer.intervalMs()).toBe(1000);
    pacer.join();
    expect(pacer.intervalMs()).toBe(1000);
  });

  it('rejects a budget that is not positive', () => {
    expect(() => new HeartbeatPacer({ maxPerSecond: 0, minIntervalMs: 1000 })).toThrow(/maxPerSecond/);
  });
});

describe('ProgressReporter with a pacer (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('heartbeats at the pacer’s interval while mirroring every update to Redis', async () => {
    const pacer = new HeartbeatPacer({ maxPerSecond: 10, minIntervalMs: 1000 });
    // 39 other stages running on this worker, plus this one: 40 within 10 a second, so every 4 s.
    for (let i = 0; i < 39; i++) pacer.join();
    const leave = pacer.join();
    const heartbeats: { at: number; details: HeartbeatDetails<unknown> }[] = [];
    const published: number[] = [];
    const reporter = new ProgressReporter({
      jobId: 'asset-alice-1',
      owner: 'alice',
      stages: ['optimize'],
      attempt: 1,
      jobLog: {
        publishProgress: (fields) => Promise.resolve(published.push(fields.done)),
        publishEvent: () => Promise.resolve(0),
      },
      heartbeat: (details) => heartbeats.push({ at: Date.now(), details }),
      heartbeatIntervalMs: () => pacer.intervalMs(),
      maxRate: 10,
      now: () => Date.now(),
    });
    reporter.startStage('optimize', 200, 'steps');
    for (let i = 1; i <= 120; i++) {
      await vi.advanceTimersByTimeAsync(100);
      reporter.update(i);
    }
    // 12 s of updates at 10 Hz: every one mirrored, but heartbeats only at start and every 4 s.
    expect(published).toHaveLength(121);
    const gaps = heartbeats.slice(1).map((h, i) => h.at - heartbeats[i]!.at);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(4000);
    reporter.close();
    leave();
  });
});
