import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobLog } from '../common/job-log.js';
import type { JobEventFields } from '../common/progress.js';
import { createRedis } from '../common/redis.js';
import { startTestRedis } from '../test/helpers/redis.js';
import { createJobEventActivities } from './job-event-activities.js';

/** The events of one job as the workflow would hand them over in one workflow task. */
function eventsOf(jobId: string): JobEventFields[] {
  const base = { jobId, owner: 'alice', runId: 'run-1', ts: 1 };
  return [
    { ...base, event: 'stage-finished', stage: 'package', message: 'Packaging TwoCubes.glb: done' },
    { ...base, event: 'completed', message: 'TwoCubes.glb is ready', preset: 'game-ready', result: { lods: 2 } },
  ];
}

/** Runs an activity as the worker would, so its `log` has an activity context. */
const inActivity = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(fn, ...args);

describe('publishJobEvents (the local activity workflows publish their events with)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let publisher: Redis;
  let jobLog: JobLog;
  const finished: string[] = [];
  const dropped: unknown[] = [];
  let activities: ReturnType<typeof createJobEventActivities>;
  beforeAll(async () => {
    redis = await startTestRedis();
    // The production publisher role: no offline queue, so a call fails fast while Redis is down.
    publisher = createRedis(redis.url, 'publisher');
    if (publisher.status !== 'ready') await new Promise((resolve) => publisher.once('ready', resolve));
    jobLog = new JobLog(publisher, { ttlSeconds: 600 });
    activities = createJobEventActivities({
      jobLog,
      onDrop: (err) => dropped.push(err),
      onFinished: (outcome, preset) => finished.push(`${outcome}/${preset}`),
    });
  });
  afterAll(async () => {
    publisher?.disconnect();
    await redis?.stop();
  });

  /** The job's whole log, as a client from seq 0 gets it. */
  const replayed = async (jobId: string) => {
    const catchUp = await jobLog.catchUp(jobId, 0);
    return catchUp.kind === 'replay' ? catchUp.messages : null;
  };

  it('publishes the events in the order given, each with its own sequence number, and counts the terminal one', async () => {
    const jobId = `asset-alice-${randomUUID()}`;
    const seqs = await inActivity(activities.publishJobEvents, eventsOf(jobId));
    expect(seqs).toEqual([1, 2]);
    const log = await replayed(jobId);
    expect(log?.map((m) => [m.seq, m.type === 'event' ? m.event : m.type])).toEqual([
      [1, 'stage-finished'],
      [2, 'completed'],
    ]);
    expect(finished).toEqual(['completed/game-ready']);
  });

  it('publishes none of them when one is malformed, so a retry cannot publish the first twice', async () => {
    const jobId = `asset-alice-${randomUUID()}`;
    const [first, second] = eventsOf(jobId);
    const malformed = { ...second!, owner: 'not an owner id' };
    await expect(inActivity(activities.publishJobEvents, [first!, malformed])).rejects.toThrow();
    expect(await replayed(jobId)).toEqual([]);
  });

  it('a reset run announces its restart once, before its own events, only while the stream ends with the old run’s outcome', async () => {
    const jobId = `asset-alice-${randomUUID()}`;
    const [, completed] = eventsOf(jobId);
    await inActivity(activities.publishJobEvent, completed!);
    const newRun = { jobId, owner: 'alice', runId: 'run-2', ts: 2 };
    const restarted: JobEventFields = {
      ...newRun,
      event: 'started',
      message: 'TwoCubes.glb was restarted by an engineer and is running again',
    };
    const redo = (stage: string): JobEventFields => ({ ...newRun, event: 'stage-started', stage, message: `Redoing ${stage}` });
    await inActivity(activities.publishJobEvents, [redo('textures')], restarted);
    await inActivity(activities.publishJobEvents, [redo('package')], restarted);
    const log = await replayed(jobId);
    expect(log?.map((m) => (m.type === 'event' ? `${m.event} ${m.runId}${m.stage ? ` ${m.stage}` : ''}` : m.type))).toEqual([
      'completed run-1',
      'started run-2',
      'stage-started run-2 textures',
      'stage-started run-2 package',
    ]);
  });

  it('never fails while Redis is down: each event not taken is counted, the rest wait with the first, and the job carries on', async () => {
    await redis.stop();
    const jobId = `asset-alice-${randomUUID()}`;
    const before = dropped.length;
    const events = eventsOf(jobId);
    const seqs = await inActivity(activities.publishJobEvents, events);
    // One null: the workflow holds both and sends them, in order, with its next publish. Both were sent
    // together, so both count as not mirrored.
    expect(seqs).toEqual([null]);
    expect(dropped.length - before).toBe(events.length);
  });
});
