import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { JobLog } from '../common/job-log.js';
import type { JobEventFields, ProgressFields } from '../common/progress.js';
import { createRedis } from '../common/redis.js';
import { startRedisServer } from '../scripts/lib/redis-server.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { ProgressReporter, type HeartbeatDetails } from './progress-reporter.js';

/** Records what the reporter publishes; the real JobLog is exercised against Redis below. */
class RecordingJobLog {
  readonly progress: ProgressFields[] = [];
  readonly events: JobEventFields[] = [];
  publishProgress(fields: ProgressFields): Promise<number> {
    this.progress.push(fields);
    return Promise.resolve(this.progress.length + this.events.length);
  }
  publishEvent(fields: JobEventFields): Promise<number> {
    this.events.push(fields);
    return Promise.resolve(this.progress.length + this.events.length);
  }
}

const STAGES = ['inspect', 'optimize', 'export'] as const;

function reporterWith(jobLog: RecordingJobLog, options: { maxRate?: number; attempt?: number } = {}) {
  const heartbeats: HeartbeatDetails<unknown>[] = [];
  const reporter = new ProgressReporter({
    jobId: 'asset-alice-1',
    owner: 'alice',
    stages: STAGES,
    attempt: options.attempt ?? 1,
    jobLog,
    heartbeat: (d) => heartbeats.push(d),
    maxRate: options.maxRate ?? 10,
    now: () => Date.now(),
  });
  return { reporter, heartbeats };
}

describe('ProgressReporter coalescing (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('mirrors at most maxRate updates a second and the trailing send carries the latest value', async () => {
    const log = new RecordingJobLog();
    const { reporter, heartbeats } = reporterWith(log, { maxRate: 10 });
    reporter.startStage('optimize', 1000, 'vertices');
    // 1000 updates over 2 s: one every 2 ms.
    for (let i = 1; i <= 1000; i++) {
      await vi.advanceTimersByTimeAsync(2);
      reporter.update(i, `vertex ${i}`);
    }
    await vi.advanceTimersByTimeAsync(1000);
    // Heartbeats are throttled to one a second (start, 2 s of updates, the trailing one), not one per update.
    expect(heartbeats.length).toBeLessThanOrEqual(4);
    expect(reporter.dropped).toBe(0);
    // Over 2 s at 10/s: the stage start plus about 20 more. The limiter lets two through back to back
    // (a burst absorbs timer jitter) but never a third within the same 100 ms.
    const sent = log.progress;
    expect(sent.length).toBeGreaterThanOrEqual(20);
    expect(sent.length).toBeLessThanOrEqual(23);
    for (let i = 2; i < sent.length; i++) expect(sent[i]!.ts - sent[i - 2]!.ts).toBeGreaterThanOrEqual(100);
    // After the burst, sends settle at one per 100 ms.
    for (let i = 3; i < sent.length - 1; i++) expect(sent[i]!.ts - sent[i - 1]!.ts).toBeGreaterThanOrEqual(98);
    // update(1000) clamps to the total; the last mirrored state is the latest one, not a stale one.
    expect(sent.at(-1)).toMatchObject({ done: 1000, message: 'vertex 1000' });
  });

  it('a stream at exactly maxRate goes out as it comes, even when timer jitter makes some gaps a hair short', async () => {
    const log = new RecordingJobLog();
    const { reporter } = reporterWith(log, { maxRate: 10 });
    reporter.startStage('optimize', 100, 'steps');
    // Gaps alternate 99 and 101 ms: 10 a second on average, half of them under 1/maxRate.
    for (let i = 1; i <= 40; i++) {
      await vi.advanceTimersByTimeAsync(i % 2 ? 99 : 101);
      const calledAt = Date.now();
      reporter.update(i);
      // Sent within the call, not held for a trailing send.
      expect(log.progress.at(-1)).toMatchObject({ done: i, ts: calledAt });
    }
    expect(log.progress).toHaveLength(41);
  });

  it('always sends the first update, each stage change and the stage finish, at once', () => {
    const log = new RecordingJobLog();
    const { reporter } = reporterWith(log, { maxRate: 1 });
    reporter.startStage('inspect', 10, 'steps');
    reporter.update(4); // the second of the burst: sent
    reporter.update(5); // inside the 1 s window with the burst spent: held for the trailing send
    reporter.finishStage('inspected');
    reporter.startStage('optimize', 4, 'meshes');
    reporter.finishStage();
    reporter.startStage('export', 1, 'files');
    expect(log.progress.map((p) => [p.stage, p.done, p.message])).toEqual([
      ['inspect', 0, 'Starting inspect'],
      ['inspect', 4, 'Starting inspect'],
      ['inspect', 10, 'inspected'],
      ['optimize', 0, 'Starting optimize'],
      ['optimize', 4, 'Finished optimize'],
      ['export', 0, 'Starting export'],
    ]);
  });

  it('heartbeats at most once a second, but at once on stage start, stage finish and a new checkpoint', async () => {
    const log = new RecordingJobLog();
    const { reporter, heartbeats } = reporterWith(log, { maxRate: 10 });
    const progressOf = (d: HeartbeatDetails<unknown> | undefined) => [d?.progress.stage, d?.progress.done, d?.checkpoint];
    reporter.startStage('optimize', 100, 'textures');
    expect(heartbeats.map(progressOf)).toEqual([['optimize', 0, undefined]]);
    // 50 updates in 500 ms, none with a new checkpoint: no heartbeat yet, the state is held for the trailing one.
    for (let i = 1; i <= 50; i++) {
      await vi.advanceTimersByTimeAsync(10);
      reporter.update(i);
    }
    expect(heartbeats).toHaveLength(1);
    // A new checkpoint goes at once (a retry must resume from it), whatever the interval.
    reporter.update(51, undefined, { done: [0] });
    expect(heartbeats.map(progressOf).at(-1)).toEqual(['optimize', 51, { done: [0] }]);
    // The same checkpoint again is not news: it waits for the interval like any update.
    await vi.advanceTimersByTimeAsync(10);
    reporter.update(52, undefined, { done: [0] });
    expect(heartbeats).toHaveLength(2);
    // One interval after the last heartbeat, the trailing heartbeat carries the latest state.
    await vi.advanceTimersByTimeAsync(1000);
    expect(heartbeats).toHaveLength(3);
    expect(heartbeats.map(progressOf).at(-1)).toEqual(['optimize', 52, { done: [0] }]);
    // Nothing new since: no more heartbeats however long the stage stays quiet.
    await vi.advanceTimersByTimeAsync(5000);
    expect(heartbeats).toHaveLength(3);
    // Stage finish goes at once even inside the interval.
    reporter.update(60);
    reporter.finishStage();
    expect(heartbeats.map(progressOf).at(-1)).toEqual(['optimize', 100, { done: [0] }]);
    const count = heartbeats.length;
    reporter.startStage('export', 1, 'files');
    expect(heartbeats).toHaveLength(count + 1);
    await reporter.flush();
  });

  it('flush sends a held heartbeat; close drops it', async () => {
    const log = new RecordingJobLog();
    const { reporter, heartbeats } = reporterWith(log, { maxRate: 10 });
    reporter.startStage('inspect', 10, 'steps');
    await vi.advanceTimersByTimeAsync(10);
    reporter.update(3);
    expect(heartbeats).toHaveLength(1);
    await reporter.flush();
    expect(heartbeats.at(-1)?.progress.done).toBe(3);
    await vi.advanceTimersByTimeAsync(10);
    reporter.update(4);
    reporter.close();
    await vi.advanceTimersByTimeAsync(5000);
    expect(heartbeats.at(-1)?.progress.done).toBe(3);
  });

  it('flush sends the held update; nothing is sent after close', async () => {
    const log = new RecordingJobLog();
    const { reporter } = reporterWith(log, { maxRate: 2 });
    reporter.startStage('inspect', 10, 'steps');
    reporter.update(2); // the second of the burst goes at once
    reporter.update(3);
    expect(log.progress).toHaveLength(2);
    await reporter.flush();
    expect(log.progress.at(-1)).toMatchObject({ done: 3 });

    reporter.update(4);
    reporter.close();
    await vi.advanceTimersByTimeAsync(5000);
    reporter.update(5);
    reporter.finishStage();
    await reporter.flush();
    await vi.advanceTimersByTimeAsync(5000);
    expect(log.progress.map((p) => p.done)).toEqual([0, 2, 3]);
  });

  it('reports whole-job percent by stage and an ETA from the measured rate', async () => {
    const log = new RecordingJobLog();
    const { reporter } = reporterWith(log, { maxRate: 1000 });
    reporter.startStage('optimize', 100, 'vertices');
    expect(log.progress.at(-1)).toMatchObject({ stageIndex: 1, stageCount: 3, percent: 33.33, etaMs: null });
    vi.advanceTimersByTime(2000);
    reporter.update(25);
    // 25 in 2 s: 75 left at the same rate is 6 s; half the middle stage is 50 % of the job.
    expect(log.progress.at(-1)).toMatchObject({ done: 25, etaMs: 6000, percent: 41.67 });
    vi.advanceTimersByTime(2000);
    reporter.update(50);
    expect(log.progress.at(-1)).toMatchObject({ etaMs: 4000, percent: 50 });
    reporter.finishStage();
    expect(log.progress.at(-1)).toMatchObject({ done: 100, etaMs: 0, percent: 66.67 });
    reporter.startStage('export', 0, 'files');
    expect(log.progress.at(-1)).toMatchObject({ percent: 66.67, etaMs: null });
    reporter.finishStage();
    expect(log.progress.at(-1)).toMatchObject({ percent: 100, etaMs: 0 });
    await reporter.flush();
  });

  it('a retried attempt announces itself once, before its first progress', () => {
    const log = new RecordingJobLog();
    const { reporter } = reporterWith(log, { attempt: 3 });
    reporter.startStage('inspect', 1, 'steps');
    reporter.startStage('optimize', 1, 'steps');
    expect(log.events).toEqual([expect.objectContaining({ event: 'retrying', stage: 'inspect', message: 'Retrying inspect (attempt 3)' })]);
    expect(log.progress.every((p) => p.attempt === 3)).toBe(true);
  });
});

describe('ProgressReporter with Redis stopped and restarted', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let restarted: Awaited<ReturnType<typeof startRedisServer>> | null = null;
  beforeAll(async () => {
    redis = await startTestRedis({ persist: true });
  });
  afterAll(async () => {
    await restarted?.stop();
    await redis?.stop();
  });

  it('never fails or holds up the activity, counts the drops, and the next update restores the snapshot', async () => {
    const publisher = createRedis(redis.url, 'publisher');
    const reader = createRedis(redis.url, 'reader');
    const jobLog = new JobLog(publisher, { ttlSeconds: 60 });
    const drops: unknown[] = [];
    const reporter = new ProgressReporter({
      jobId: 'asset-alice-down',
      owner: 'alice',
      stages: STAGES,
      attempt: 1,
      jobLog,
      heartbeat: () => {},
      maxRate: 1000,
      onDrop: (err) => drops.push(err),
    });
    try {
      await expect.poll(() => publisher.status, { timeout: 10_000 }).toBe('ready');
      reporter.startStage('inspect', 10, 'steps');
      await reporter.flush();
      expect(reporter.published).toBe(1);
      const before = await new JobLog(reader, { ttlSeconds: 60 }).readSnapshot('asset-alice-down');
      expect(before?.seq).toBe(1);

      await redis.process.stop();
      await expect.poll(() => publisher.status, { timeout: 10_000 }).not.toBe('ready');
      // Every call returns at once and nothing throws; each update is a drop, not a queued command.
      for (let i = 1; i <= 5; i++) {
        reporter.update(i, `step ${i}`);
        await reporter.flush(); // sends it even within the rate window
      }
      expect(reporter.dropped).toBe(5);
      expect(drops).toHaveLength(5);

      restarted = await startRedisServer({ port: redis.port, dir: redis.dir, persist: true });
      await expect.poll(() => publisher.status, { timeout: 15_000 }).toBe('ready');
      reporter.update(7, 'step 7');
      await reporter.flush();
      const after = await new JobLog(reader, { ttlSeconds: 60 }).readSnapshot('asset-alice-down');
      // The append-only file kept the seq, and the one new update carries the whole state.
      expect(after).toMatchObject({ seq: 2, progress: { seq: 2, done: 7, message: 'step 7', stage: 'inspect' } });
    } finally {
      reporter.close();
      publisher.disconnect();
      reader.disconnect();
    }
  });

  it('with Redis stalled, updates neither wait nor pile up: past a small backlog they are dropped at once', async () => {
    const publisher = createRedis(redis.url, 'publisher');
    const admin = createRedis(redis.url, 'reader');
    let clock = 0;
    const reporter = new ProgressReporter({
      jobId: 'asset-alice-stalled',
      owner: 'alice',
      stages: STAGES,
      attempt: 1,
      jobLog: new JobLog(publisher, { ttlSeconds: 60 }),
      heartbeat: () => {},
      maxRate: 10,
      now: () => (clock += 200), // every update is due: none is coalesced away
    });
    try {
      await expect.poll(() => publisher.status, { timeout: 10_000 }).toBe('ready');
      // Redis accepts the connection but runs no write (scripts included) for 1.5 s: a stalled server.
      await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
      reporter.startStage('inspect', 100, 'steps');
      for (let i = 1; i <= 19; i++) reporter.update(i);
      // 20 sends, at most 8 in flight: the other 12 were dropped synchronously, nothing queued behind them.
      expect(reporter.dropped).toBe(12);
      await reporter.flush();
      reporter.update(50, 'after the stall');
      await reporter.flush();
      const snapshot = await new JobLog(admin, { ttlSeconds: 60 }).readSnapshot('asset-alice-stalled');
      expect(snapshot?.progress).toMatchObject({ done: 50, message: 'after the stall' });
    } finally {
      reporter.close();
      publisher.disconnect();
      admin.disconnect();
    }
  });
});
