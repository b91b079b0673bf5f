import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import type { JobEventActivities } from '../activities/job-event-activities.js';
import type { JobEventFields } from '../common/progress.js';
import { HANDOVER_KEY, unwrapHandover, type StageHandover } from '../common/stage-handover.js';
import { stageHandoverInterceptor } from './stage-handover.js';

const jobId = 'asset-alice-5b0e6c1e-8f7e-4c55-9d2b-0b4c3f1a2d3e';
const base = { jobId, owner: 'alice', runId: 'run-1', ts: 1 };
const HANDOVER: StageHandover = {
  events: [
    { ...base, event: 'stage-finished', stage: 'inspect', message: 'Inspecting a.glb: done' },
    { ...base, event: 'stage-started', stage: 'validate', message: 'Validating a.glb' },
  ],
  wait: { queue: 'hpc', priorityKey: 3, fairnessKey: 'alice', fairnessWeight: 1 },
};
const RESULT = { meshes: 1, triangles: 12 };

/** Runs a stage through the interceptor, in an activity context as the worker would. */
async function runStage(
  request: unknown,
  stage: () => Promise<unknown>,
  publish: JobEventActivities['publishJobEvents'],
): Promise<unknown> {
  const { inbound } = stageHandoverInterceptor(publish)({} as never);
  return new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(() =>
    inbound!.execute!({ args: [request], headers: {} }, () => stage()),
  );
}

describe('stage handover on the HPC worker', () => {
  it('publishes the handover once the stage has returned, stamped with that time, and returns the result with each sequence number', async () => {
    const published: { events: JobEventFields[]; wait: unknown; at: number }[] = [];
    let stageEndedAt = 0;
    const raw = await runStage(
      { input: {}, settings: {}, handover: HANDOVER },
      async () => {
        expect(published).toHaveLength(0);
        stageEndedAt = Date.now();
        return RESULT;
      },
      async (events, _restarted, wait) => {
        published.push({ events, wait, at: Date.now() });
        return events.map((_e, i) => i + 7);
      },
    );
    expect(raw).toEqual({ [HANDOVER_KEY]: [7, 8], result: RESULT });
    expect(unwrapHandover(raw)).toEqual({ result: RESULT, seqs: [7, 8] });
    expect(published).toHaveLength(1);
    expect(published[0]!.events.map((e) => `${e.event} ${e.stage}`)).toEqual(['stage-finished inspect', 'stage-started validate']);
    expect(published[0]!.wait).toEqual(HANDOVER.wait);
    for (const e of published[0]!.events) expect(e.ts).toBeGreaterThanOrEqual(stageEndedAt);
  });

  it('hands nothing over for a request without one, a malformed one, a failed stage, or a publish that throws: the workflow publishes then', async () => {
    let calls = 0;
    const publish: JobEventActivities['publishJobEvents'] = async (events) => {
      calls++;
      return events.map(() => 1);
    };
    // No handover (cleanup, a run from before handovers) and malformed ones: the bare result.
    const malformed = [
      undefined,
      null,
      'handover',
      { events: [] },
      { events: [{ ...HANDOVER.events[0], jobId: 'not a job id' }] },
      { events: HANDOVER.events, wait: { queue: '' } },
      { events: Array.from({ length: 5 }, () => HANDOVER.events[0]) },
    ];
    for (const handover of malformed) {
      const request = handover === undefined ? { input: {}, settings: {} } : { input: {}, settings: {}, handover };
      expect(await runStage(request, async () => RESULT, publish)).toEqual(RESULT);
    }
    expect(unwrapHandover(RESULT)).toEqual({ result: RESULT, seqs: null });
    expect(calls).toBe(0);

    // A failed stage: its error, nothing published.
    await expect(
      runStage({ input: {}, settings: {}, handover: HANDOVER }, () => Promise.reject(new Error('stage broke')), publish),
    ).rejects.toThrow('stage broke');
    expect(calls).toBe(0);

    // A publish that throws never fails a stage whose work is done.
    const throwing: JobEventActivities['publishJobEvents'] = () => Promise.reject(new Error('bug'));
    expect(await runStage({ input: {}, settings: {}, handover: HANDOVER }, async () => RESULT, throwing)).toEqual(RESULT);
  });

  it('passes on what Redis did not take, so the workflow sends those itself', async () => {
    const raw = await runStage(
      { input: {}, settings: {}, handover: HANDOVER },
      async () => RESULT,
      async () => [3, null],
    );
    expect(unwrapHandover(raw)).toEqual({ result: RESULT, seqs: [3, null] });
  });
});
