import { describe, expect, it } from 'vitest';
import { StallWatch } from './stall-watch.js';

describe('StallWatch', () => {
  function watch(stallAfterMs: number) {
    let now = 1_000;
    const calls: string[] = [];
    const w = new StallWatch({
      stallAfterMs,
      now: () => now,
      onStall: (silent) => calls.push(`stall after ${silent}`),
      onRecover: (stalledFor) => calls.push(`recover after ${stalledFor}`),
    });
    return { w, calls, advance: (ms: number) => (now += ms) };
  }

  it('flags a stage once when no progress arrives for the configured time, and clears it on progress', () => {
    const { w, calls, advance } = watch(10_000);
    advance(9_999);
    w.check();
    expect(calls).toEqual([]);
    advance(1);
    w.check();
    advance(5_000);
    w.check();
    expect(calls).toEqual(['stall after 10000']);
    expect(w.stalled).toBe(true);
    advance(2_000);
    w.progress();
    expect(calls).toEqual(['stall after 10000', 'recover after 7000']);
    expect(w.stalled).toBe(false);
  });

  it('never flags a stage that keeps reporting progress', () => {
    const { w, calls, advance } = watch(10_000);
    for (let i = 0; i < 20; i++) {
      advance(6_000);
      w.progress();
      w.check();
    }
    expect(calls).toEqual([]);
  });
});
