import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../test/helpers/redis.js';
import { JobControlMessage, jobControlChannel } from './job-control.js';
import { JobLog, jobKeys } from './job-log.js';
import { JobMessage, progressChannel, type ProgressFields } from './progress.js';

function progress(jobId: string, done: number): ProgressFields {
  return {
    jobId,
    owner: 'alice',
    stage: 'inspect',
    stageIndex: 0,
    stageCount: 1,
    done,
    total: 10,
    unit: 'steps',
    percent: done * 10,
    message: `step ${done}`,
    etaMs: null,
    attempt: 1,
    ts: Date.now(),
  };
}

describe('JobLog on a real Redis', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let client: Redis;
  let subscriber: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = new Redis(redis.url);
    // One test makes Redis drop this connection on purpose; ioredis reconnects by itself.
    client.on('error', () => undefined);
    subscriber = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    subscriber?.disconnect();
    await redis?.stop();
  });

  it('assigns increasing sequence numbers and publishes exactly what it stores', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    const received: string[] = [];
    await subscriber.subscribe(progressChannel('alice', 'job-a'));
    subscriber.on('message', (_channel, message: string) => received.push(message));
    const seqs = [];
    for (let i = 1; i <= 5; i++) seqs.push(await log.publishProgress(progress('job-a', i)));
    seqs.push(await log.publishEvent({ jobId: 'job-a', owner: 'alice', event: 'completed', message: 'done', ts: Date.now() }));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    await expect.poll(() => received.length).toBe(6);
    const parsed = received.map((r) => JobMessage.parse(JSON.parse(r)));
    expect(parsed.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(parsed[2]).toMatchObject({ type: 'progress', done: 3, message: 'step 3' });

    const snapshot = await log.readSnapshot('job-a');
    expect(snapshot).toMatchObject({ seq: 6, progress: { seq: 5, done: 5 }, event: { seq: 6, event: 'completed' } });
    expect(await client.ttl(jobKeys('job-a').state)).toBeGreaterThan(50);
  });

  it('tells the HPC workers to stop a job that is being cancelled, on its control channel only', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    const listener = new Redis(redis.url);
    try {
      const control: Array<[string, string]> = [];
      listener.on('message', (channel: string, message: string) => control.push([channel, message]));
      await listener.subscribe(jobControlChannel('job-stop'), jobControlChannel('job-other'));
      await log.publishEvent({ jobId: 'job-stop', owner: 'alice', event: 'stage-started', stage: 'lods', message: 'LODs', ts: 1 });
      await log.publishEvent({ jobId: 'job-stop', owner: 'alice', event: 'cancelling', message: 'Cancelling', ts: 2, runId: 'run-1' });
      await expect.poll(() => control.length).toBe(1);
      const [channel, message] = control[0]!;
      expect(channel).toBe(jobControlChannel('job-stop'));
      expect(JobControlMessage.parse(JSON.parse(message))).toEqual({ type: 'stop', jobId: 'job-stop', runId: 'run-1', ts: 2 });
      // The artist's channel got the event itself, and nothing meant for the workers.
      expect((await log.readSnapshot('job-stop'))?.event).toMatchObject({ event: 'cancelling' });
    } finally {
      listener.disconnect();
    }
  });

  it('gives a job that only ever sent progress an expiry on all its keys, and caps its replay log', async () => {
    const log = new JobLog(client, { ttlSeconds: 60, logMax: 10 });
    for (let i = 1; i <= 40; i++) await log.publishProgress(progress('job-ttl', i % 10));
    const keys = jobKeys('job-ttl');
    for (const key of [keys.seq, keys.state, keys.log]) {
      const ttl = await client.ttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(60);
    }
    expect(await client.llen(keys.log)).toBe(10);
    expect(JobMessage.parse(JSON.parse((await client.lindex(keys.log, -1))!))).toMatchObject({ seq: 40 });
  });

  it('replays only what came after lastSeq, and says when the log no longer reaches back', async () => {
    const log = new JobLog(client, { ttlSeconds: 60, logMax: 4 });
    for (let i = 1; i <= 6; i++) await log.publishProgress(progress('job-b', i));
    const seqsAfter = async (afterSeq: number) => {
      const catchUp = await log.catchUp('job-b', afterSeq);
      return catchUp.kind === 'replay' ? catchUp.messages.map((m) => m.seq) : catchUp;
    };
    expect(await seqsAfter(4)).toEqual([5, 6]);
    expect(await seqsAfter(6)).toEqual([]);
    // Only seq 3..6 are kept: a client at seq 1 has to start again from the snapshot.
    expect(await seqsAfter(1)).toMatchObject({ kind: 'snapshot', reset: false, snapshot: { seq: 6 } });
    expect(await seqsAfter(2)).toEqual([3, 4, 5, 6]);
    // A client ahead of Redis (it lost the job's keys) is told to reset.
    expect(await seqsAfter(9)).toMatchObject({ kind: 'snapshot', reset: true, snapshot: { seq: 6 } });
  });

  it('catches a client up by replay, by snapshot when the log is trimmed, and by a reset snapshot when Redis is behind', async () => {
    const log = new JobLog(client, { ttlSeconds: 60, logMax: 4 });
    for (let i = 1; i <= 6; i++) await log.publishProgress(progress('job-c', i));
    expect(await log.catchUp('job-c', 4)).toEqual({
      kind: 'replay',
      messages: [expect.objectContaining({ seq: 5 }), expect.objectContaining({ seq: 6 })],
    });
    expect(await log.catchUp('job-c', 6)).toEqual({ kind: 'replay', messages: [] });
    expect(await log.catchUp('job-c', 1)).toMatchObject({ kind: 'snapshot', reset: false, snapshot: { seq: 6, progress: { done: 6 } } });
    // The client saw seq 9, but Redis only has 6 (data lost): it must start over from the snapshot.
    expect(await log.catchUp('job-c', 9)).toMatchObject({ kind: 'snapshot', reset: true, snapshot: { seq: 6 } });
    expect(await log.catchUp('job-none', 3)).toMatchObject({ kind: 'snapshot', reset: true, snapshot: { seq: 0, progress: null } });
  });

  it('publishes a reconciled terminal event once, however many API processes ask', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    await log.publishProgress(progress('job-d', 1));
    const terminated = { jobId: 'job-d', owner: 'alice', event: 'terminated' as const, message: 'stopped', ts: Date.now() };
    const results = await Promise.all([1, 2, 3].map(() => log.publishTerminalIfMissing(terminated)));
    expect(results.filter((r) => r !== null)).toEqual([2]);
    // A reset in the Temporal UI starts a new run: after its non-terminal event, a later closure is reconciled again.
    await log.publishEvent({ jobId: 'job-d', owner: 'alice', event: 'started', message: 'again', ts: Date.now() });
    expect(await log.publishTerminalIfMissing(terminated)).toBe(4);
    await expect(log.publishTerminalIfMissing({ ...terminated, event: 'started' })).rejects.toThrow(/not a terminal event/);
  });

  it('tells a terminal event of an older run (a Temporal reset) from the current run', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    const base = { jobId: 'job-reset', owner: 'alice', ts: Date.now() };
    await log.publishEvent({ ...base, event: 'completed', message: 'done', runId: 'run-1' });
    // The same run, closing: neither a second terminal event nor a "running again".
    expect(await log.publishIfSuperseded({ ...base, event: 'started', message: 'again', runId: 'run-1' })).toBeNull();
    expect(await log.publishTerminalIfMissing({ ...base, event: 'completed', message: 'done', runId: 'run-1' })).toBeNull();
    // A new run that closes as the old one did, with nothing published of its own, keeps the old event's details.
    expect(await log.publishTerminalIfMissing({ ...base, event: 'completed', message: 'done', runId: 'run-0' })).toBeNull();
    // A new run after a reset is announced once, however many API processes notice it.
    const announced = await Promise.all(
      [1, 2, 3].map(() => log.publishIfSuperseded({ ...base, event: 'started', message: 'again', runId: 'run-2' })),
    );
    expect(announced.filter((seq) => seq !== null)).toEqual([2]);
    // Once the new run is terminated (no workflow code runs), its terminal event is reconciled, also once.
    await log.publishEvent({ ...base, event: 'completed', message: 'done', runId: 'run-2' });
    const reconciled = await log.publishTerminalIfMissing({ ...base, event: 'terminated', message: 'stopped', runId: 'run-3' });
    expect(reconciled).toBe(4);
    expect(await log.publishTerminalIfMissing({ ...base, event: 'terminated', message: 'stopped', runId: 'run-3' })).toBeNull();
    // An event stored without a run id counts as the current run's: no guess either way.
    await log.publishEvent({ jobId: 'job-legacy', owner: 'alice', ts: Date.now(), event: 'completed', message: 'done' });
    expect(
      await log.publishIfSuperseded({ jobId: 'job-legacy', owner: 'alice', ts: Date.now(), event: 'started', message: 'x', runId: 'r' }),
    ).toBeNull();
  });

  it('refuses a message that does not match the shared schema, before it reaches Redis', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    await expect(log.publishProgress({ ...progress('job-e', 1), percent: 250 })).rejects.toThrow();
    expect(await log.readSnapshot('job-e')).toBeNull();
  });

  it('knows nothing of a job that never published', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    expect(await log.readSnapshot('job-none')).toBeNull();
  });

  it('sends a lone message at once, and what is published while it is in flight as one script call, in call order', async () => {
    const log = new JobLog(client, { ttlSeconds: 60, logMax: 4 });
    const calls = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0);
    await log.publishProgress(progress('job-warm', 1)); // loads the script, so the batch below is one EVALSHA
    const before = await calls();
    const jobs = Array.from({ length: 30 }, (_, i) => `job-batch-${i}`); // 240 messages: one batch (at most 256)
    const ended = { owner: 'alice', event: 'completed', message: 'done', runId: 'run-1' } as const;
    // Per job, interleaved across jobs: 5 updates, a terminal event, a reconciliation that must not
    // publish (the job already ended), then one more update.
    const answers = jobs.flatMap((jobId) => [
      ...[1, 2, 3, 4, 5].map((i) => log.publishProgress(progress(jobId, i))),
      log.publishEvent({ ...ended, jobId, ts: Date.now() }),
      log.publishTerminalIfMissing({ ...ended, jobId, ts: Date.now() }),
      log.publishProgress(progress(jobId, 9)),
    ]);
    const seqs = await Promise.all(answers);
    // The first two went alone (two calls may wait for Redis at once); the other 238 waited for an
    // answer and went together.
    expect(await calls()).toBe(before + 3);
    for (let j = 0; j < jobs.length; j++) expect(seqs.slice(j * 8, j * 8 + 8)).toEqual([1, 2, 3, 4, 5, 6, null, 7]);
    for (const jobId of [jobs[0]!, jobs[29]!]) {
      const stream = await log.readStream(jobId);
      expect(stream.snapshot).toMatchObject({ seq: 7, progress: { seq: 7, done: 9 }, event: { seq: 6, event: 'completed' } });
      expect(stream.log.map((m) => m.seq)).toEqual([4, 5, 6, 7]);
    }
  });

  it('fails every caller of a batch Redis refuses, and publishes nothing of it', async () => {
    const log = new JobLog(client, { ttlSeconds: 60 });
    const bad = { ...progress('job-refused', 1), message: 'x'.repeat(16) };
    await client.config('SET', 'proto-max-bulk-len', String(1024 * 1024));
    try {
      // The first two go alone; the next two wait for an answer and go as one call, which Redis refuses.
      const answers = [
        log.publishProgress(bad),
        log.publishProgress({ ...bad, done: 2 }),
        log.publishProgress({ ...bad, done: 3 }),
        log.publishProgress({ ...bad, done: 4, message: 'y'.repeat(2 * 1024 * 1024) }),
      ];
      const settled = await Promise.allSettled(answers);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
      await expect.poll(() => client.ping().catch(() => null)).toBe('PONG');
      expect(await log.readSnapshot('job-refused')).toMatchObject({ seq: 2, progress: { done: 2 } });
    } finally {
      await client.config('SET', 'proto-max-bulk-len', String(512 * 1024 * 1024));
    }
  });
});
