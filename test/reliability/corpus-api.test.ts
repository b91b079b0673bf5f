import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CorpusFigures, runCorpus } from '../helpers/corpus-run.js';
import { type StartedStack, startNpmStartStack } from '../helpers/started-stack.js';

/**
 * Issue 17's check, fast: a seeded sample of the corpus (valid, invalid and every hostile upload) through
 * the real HTTP API of the stack `npm start` runs, with a healthy job among them. The full run of 300
 * is test/chaos/corpus.chaos.test.ts and `npm run corpus`.
 */
let stack: StartedStack;
let figures: CorpusFigures;
beforeAll(async () => {
  stack = await startNpmStartStack({ temporalCliPath: inject('temporalCliPath'), env: { API_SUBMIT_PER_MINUTE: '100000' } });
  ({ figures } = await runCorpus(stack, {
    count: 34,
    seed: 1717,
    corpusCases: 12,
    roundTrips: 1,
    healthyAsset: 'TwoCubes.glb',
    inFlight: 4,
  }));
  console.log(`[corpus] ${JSON.stringify(figures)}`);
});
afterAll(async () => stack?.stop());

describe('a sample of the corpus through the real API', () => {
  it('completes every valid upload, the unicode-named ones under their own names', () => {
    expect(figures.problems).toEqual([]);
    expect(figures.valid.total).toBeGreaterThan(5);
    expect(figures.valid.completed + figures.valid.failedNamingFeature).toBe(figures.valid.total);
    expect(figures.valid.completedPercent).toBeGreaterThanOrEqual(95);
    expect(figures.unicode.checked).toBeGreaterThan(0);
    expect(figures.unicode.roundTripped).toBe(figures.unicode.checked);
    expect(figures.roundTrip.outputs).toBeGreaterThan(0);
    expect(figures.roundTrip.completed).toBe(figures.roundTrip.outputs);
  });

  it('fails every invalid upload on its first attempt with the validator’s codes, and refuses every hostile one at once', () => {
    expect(figures.invalid.total).toBeGreaterThanOrEqual(5);
    expect(figures.invalid.percent).toBe(100);
    expect(figures.retriesOfDeterministicFailures).toBe(0);
    // "In well under a minute" (issue 17), upload to failure, on the loaded 2-core box.
    expect(figures.longestInvalidSeconds).toBeLessThan(60);
    // Every hostile kind (the PNG and JSON bombs among them count as invalid uploads: they become jobs).
    expect(figures.hostile.total).toBeGreaterThanOrEqual(14);
    expect(figures.hostile.refusedOrContained).toBe(figures.hostile.total);
  });

  it('leaves the worker up, nothing hung, nothing written outside the data folder, and the healthy job completed', () => {
    expect(figures.workerCrashes).toBe(0);
    expect(figures.hangs).toBe(0);
    expect(figures.filesOutsideDataDir).toEqual([]);
    expect(figures.healthy.status).toBe('COMPLETED');
  });
});
