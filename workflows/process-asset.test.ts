import { sleep as activitySleep, Context as ActivityContext, heartbeat, CancelledFailure as ActivityCancelled } from '@temporalio/activity';

const activityContext = () => ActivityContext.current();
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { seededRandom } from '../bench/assets/seeded-random.js';
import { waitFor } from '../scripts/lib/wait.js';
import type { ProcessAssetInput } from '../common/jobs.js';
import { PRESET_SETTINGS, type PipelineActivities, type PipelineReport } from '../common/pipeline.js';
import { BUILTIN_STAGES, CORE_STAGES, planStages, type StageDescriptor, stageNamesOf } from '../common/stages.js';
import type { JobEventFields } from '../common/progress.js';
import { ASSET_OUTCOME, ASSET_STAGE, ASSET_STALLED } from '../common/search-attributes.js';
import { stallChangedSignal } from '../common/signals.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { bundleWorkflows, saveHistoryIfRequested, withWorkers } from '../test/helpers/workflow-workers.js';
import { mockPipeline, TWO_CUBES_OPTIMIZE, TWO_CUBES_STATS } from '../test/helpers/pipeline-activities.js';
import { createTimeSkippingEnv } from '../test/helpers/temporal-env.js';
import type { expireOutputs } from './expire-outputs.js';
import type { processAsset } from './process-asset.js';
import { progressQuery, setRetentionDaysUpdate } from './queries.js';

const input: ProcessAssetInput = {
  owner: 'alice',
  assetName: 'TwoCubes.glb',
  files: [{ name: 'TwoCubes.glb', sha256: 'f'.repeat(64), size: 2608 }],
  options: { preset: 'game-ready' },
};
const DAY_MS = 24 * 60 * 60 * 1000;
/** These jobs are started without a plan, as before the registry: they run PLAN_BEFORE_REGISTRY. */
const STAGES = stageNamesOf(undefined);

/** An event as the tests compare streams: its kind and stage. */
const label = (e: JobEventFields) => `${e.event}${e.stage ? ` ${e.stage}` : ''}`;

/** A completed job's whole stream, in order, each event once. */
const COMPLETE_STREAM = [
  'started',
  'stage-started inspect',
  ...STAGES.flatMap((stage, i) => [`stage-finished ${stage}`, ...(i + 1 < STAGES.length ? [`stage-started ${STAGES[i + 1]}`] : [])]),
  'completed',
];

/**
 * The search-attribute values a workflow upserted, in order, from its history. TemporalChangeVersion
 * is the SDK's own record of the patches a run took (upserted by `patched()`), not the job's.
 */
async function upsertedSearchAttributes(handle: WorkflowHandle): Promise<Record<string, string>[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    const ours = Object.entries(fields ?? {}).filter(([k]) => k !== 'TemporalChangeVersion');
    if (ours.length === 0) return [];
    return [Object.fromEntries(ours.map(([k, p]) => [k, JSON.parse(Buffer.from(p.data!).toString())]))];
  });
}

/** A JSON payload's value (no codec is configured). */
function payloadValue(payload: { data?: Uint8Array | null } | undefined | null): unknown {
  return payload?.data ? JSON.parse(Buffer.from(payload.data).toString('utf8')) : undefined;
}

/**
 * Starts processAsset on `env` with both workers and hands the running job to `drive`; the workers stop
 * when `drive` returns.
 */
async function withJob<T>(
  env: TestWorkflowEnvironment,
  workflowBundle: WorkflowBundle,
  pipeline: PipelineActivities,
  drive: (job: { handle: WorkflowHandle<typeof processAsset>; events: JobEventFields[] }) => Promise<T>,
  jobInput: ProcessAssetInput = input,
  redisTakes?: (fields: JobEventFields) => boolean,
  workers: { handover?: boolean } = {},
): Promise<T> {
  return withWorkers(
    env,
    workflowBundle,
    pipeline,
    async (events) => {
      const handle = await env.client.workflow.start<typeof processAsset>('processAsset', {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: `asset-alice-${Math.random().toString(16).slice(2)}`,
        args: [jobInput],
      });
      return drive({ handle, events });
    },
    jobInput.options.hpcQueue,
    redisTakes,
    workers,
  );
}

/**
 * The expireOutputs child of a completed job, once its timer runs. Waited for while the test's workers
 * still run, so the child's first workflow task is not left to a worker that has stopped (the test
 * server does not skip time while a workflow task is outstanding).
 */
async function retentionTimerOf(env: TestWorkflowEnvironment, jobId: string): Promise<WorkflowHandle<typeof expireOutputs>> {
  const timer = env.client.workflow.getHandle<typeof expireOutputs>(`expire-outputs-${jobId}`);
  await waitFor(async () => (await timer.fetchHistory()).events?.some((e) => e.timerStartedEventAttributes), {
    timeoutMs: 20_000,
    what: `the retention timer of ${jobId} to start`,
  });
  return timer;
}

let workflowBundle: WorkflowBundle;
beforeAll(async () => {
  workflowBundle = await bundleWorkflows();
});

describe('processAsset workflow (time-skipping, mocked compute)', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });
  /** A job's events once it has completed and its retention timer has started. */
  const eventsOnceDone = async ({ handle, events }: { handle: WorkflowHandle<typeof processAsset>; events: JobEventFields[] }) => {
    await handle.result();
    await retentionTimerOf(env, handle.workflowId);
    return events;
  };
  const runJob: <T>(
    pipeline: PipelineActivities,
    drive: (job: { handle: WorkflowHandle<typeof processAsset>; events: JobEventFields[] }) => Promise<T>,
    jobInput?: ProcessAssetInput,
  ) => Promise<T> = (pipeline, drive, jobInput) => withJob(env, workflowBundle, pipeline, drive, jobInput);

  it('runs the six stages in order on the HPC queue, announces each, and records stage and outcome', async () => {
    const mock = mockPipeline();
    const { report, events, handle, progress } = await runJob(mock.activities, async ({ handle, events }) => {
      const report = await handle.result();
      await retentionTimerOf(env, handle.workflowId);
      return { report, events, handle, progress: await handle.query(progressQuery) };
    });

    expect(mock.namesFor(handle.workflowId)).toEqual([
      'inspectAsset',
      'validateAsset',
      'optimizeAsset',
      'buildLods',
      'processTextures',
      'packageOutputs',
    ]);
    expect(events.map((e) => [e.event, e.stage])).toEqual([
      ['started', undefined],
      ...STAGES.flatMap((s) => [
        ['stage-started', s],
        ['stage-finished', s],
      ]),
      ['completed', undefined],
    ]);
    expect(events.at(-1)?.result).toMatchObject({ meshes: 2, triangles: 24, lods: 2, outputs: 2, outputBytes: 2700 });
    expect(report).toMatchObject<Partial<PipelineReport>>({ jobId: handle.workflowId, input: TWO_CUBES_STATS });
    expect(report.settings).toMatchObject({ lodRatios: [0.5, 0.25], retentionDays: 7 });
    expect(progress).toEqual({ stage: 'package', stageIndex: 5, stageCount: 6, status: 'completed' });

    // Every compute stage ran on the HPC queue, with a heartbeat timeout to notice a dead worker.
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes ?? []);
    const compute = scheduled.filter((a) => a.activityType?.name !== 'publishJobEvent');
    expect(compute.map((a) => a.taskQueue?.name)).toEqual(Array(6).fill(HPC_TASK_QUEUE));
    expect(compute.every((a) => Number(a.heartbeatTimeout?.seconds) > 0)).toBe(true);

    expect(await upsertedSearchAttributes(handle)).toEqual([
      ...STAGES.map((s) => ({ [ASSET_STAGE.name]: s })),
      { [ASSET_OUTCOME.name]: 'completed' },
    ]);
    await saveHistoryIfRequested('process-asset-completed', handle);
  });

  it('runs the plan the job was started with: a stage the built-in registry lacks runs in its place, its result in the report', async () => {
    // A studio's stage between textures and package, as STAGES_CONFIG would add it; the workflow knows it
    // only from the job's input, so a deploy that drops it from the registry cannot change this job.
    const studioStage: StageDescriptor = {
      name: 'check-naming',
      label: 'Checking names in',
      activity: 'studioStage.check-naming',
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: '30 seconds',
      reads: ['work'],
      writes: [],
      result: z.object({ exitCode: z.number() }),
    };
    // The core stages only (the mocks' results are theirs), whatever else the registry holds today.
    const core = BUILTIN_STAGES.filter((s) => (CORE_STAGES as readonly string[]).includes(s.name));
    const beforePackage = core.findIndex((s) => s.name === 'package');
    const registry = [...core.slice(0, beforePackage), studioStage, ...core.slice(beforePackage)];
    const plan = planStages(registry, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] });
    const mock = mockPipeline();
    const studioCalls: unknown[] = [];
    const pipeline = {
      ...mock.activities,
      [studioStage.activity]: async (request: unknown) => {
        studioCalls.push(request);
        return { exitCode: 0 };
      },
    };
    const { report, events, handle, progress } = await runJob(
      pipeline,
      async ({ handle, events }) => {
        const report = await handle.result();
        await retentionTimerOf(env, handle.workflowId);
        return { report, events, handle, progress: await handle.query(progressQuery) };
      },
      { ...input, plan },
    );
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes ?? []);
    expect(scheduled.map((a) => a.activityType?.name)).toEqual(plan.map((s) => s.activity));
    expect(plan.map((s) => s.name)).toContain('check-naming');
    // Its own timeout, from the plan.
    expect(Number(scheduled.find((a) => a.activityType?.name === studioStage.activity)?.startToCloseTimeout?.seconds)).toBe(300);
    expect(studioCalls).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'started', stages: plan.map((s) => s.name) });
    expect(events.filter((e) => e.event === 'stage-started').map((e) => [e.stage, e.message])).toContainEqual([
      'check-naming',
      'Checking names in TwoCubes.glb',
    ]);
    expect(report.stages).toEqual({ 'check-naming': { exitCode: 0 } });
    expect(progress).toEqual({ stage: 'package', stageIndex: plan.length - 1, stageCount: plan.length, status: 'completed' });
    await saveHistoryIfRequested('process-asset-with-studio-stage', handle);
  });

  const gamePlan = () => planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] });
  it.each([
    {
      what: 'a plan without a core stage',
      change: { plan: gamePlan().filter((s) => s.name !== 'lods') },
      says: /stage plan is not valid.*must contain/s,
    },
    { what: 'a plan with a stage twice', change: { plan: [...gamePlan(), gamePlan()[0]!] }, says: /stage plan is not valid.*repeat/s },
    {
      what: 'a plan with a timeout that is no duration',
      change: { plan: gamePlan().map((s, i) => (i === 2 ? { ...s, startToCloseTimeout: 'soon' } : s)) },
      says: /stage plan is not valid.*duration/s,
    },
    { what: 'an unknown preset', change: { options: { preset: 'ultra' } }, says: /options are not valid.*unknown preset "ultra"/ },
    {
      what: 'a retention below a day',
      change: { options: { preset: 'mobile', retentionDays: -3 } },
      says: /options are not valid.*retentionDays/s,
    },
    {
      what: 'a texture format nobody writes',
      change: { options: { preset: 'archive', textureFormat: 'gif' } },
      says: /options are not valid.*textureFormat/s,
    },
    { what: 'options that are no object', change: { options: 'fast please' }, says: /options are not valid/ },
  ])('refuses $what as invalid options, saying why, before running any stage', async ({ change, says }) => {
    const mock = mockPipeline();
    const { error, jobId, events } = await runJob(
      mock.activities,
      async ({ handle, events }) => ({
        error: await handle.result().then(
          () => null,
          (err: unknown) => err,
        ),
        jobId: handle.workflowId,
        events,
      }),
      { ...input, ...change } as ProcessAssetInput,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'INVALID_OPTIONS' });
    expect((error as WorkflowFailedError).cause?.message).toMatch(says);
    expect(mock.namesFor(jobId)).toEqual(['cleanupJob']);
    // The artist is told why: started, then failed with the same reason, no stage in between. At least
    // once: the expiry child, with no retention to wait for, may end while the job's last workflow task
    // is in flight; Temporal then runs that task again, and its publish with it.
    expect(`${events.map((e) => e.event).join()},`).toMatch(/^(started,failed,)+$/);
    expect(events[1]?.error).toMatchObject({ type: 'INVALID_OPTIONS', message: expect.stringMatching(says) });
  });

  it.each([
    { handover: true, worker: 'an HPC worker that hands stages over' },
    { handover: false, worker: 'an HPC worker from before handovers' },
  ])('publishes its events in workflow tasks or stage handovers, never an activity task each, in order ($worker)', async ({ handover }) => {
    const mock = mockPipeline();
    const { events, history } = await withJob(
      env,
      workflowBundle,
      mock.activities,
      async ({ handle, events }) => {
        await handle.result();
        await retentionTimerOf(env, handle.workflowId);
        return { events, history: await handle.fetchHistory() };
      },
      input,
      undefined,
      { handover },
    );

    // What the history says happened, in its order. Events are published by a local activity, recorded
    // as a marker whose result is what publishJobEvents answered: here (withWorkers) the events' positions.
    const timeline = (history.events ?? []).flatMap((e): string[] => {
      const scheduled = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (scheduled) return [`activity ${scheduled}`];
      const marker = e.markerRecordedEventAttributes;
      if (marker?.markerName === 'core_local_activity') {
        const about = z.object({ activity_type: z.string() }).parse(payloadValue(marker.details?.data?.payloads?.[0]));
        // The input check answers the job's settings, resolved from its preset.
        if (about.activity_type === 'checkJobInput') {
          const { settings } = z
            .object({ settings: z.object({ retentionDays: z.number() }) })
            .parse(payloadValue(marker.details?.result?.payloads?.[0]));
          return [`checkJobInput: settings, kept ${settings.retentionDays} days`];
        }
        const positions = z.array(z.number().int().positive()).parse(payloadValue(marker.details?.result?.payloads?.[0]));
        return [`${about.activity_type}: ${positions.map((p) => label(events[p - 1]!)).join(', ')}`];
      }
      if (e.startChildWorkflowExecutionInitiatedEventAttributes) return ['child expireOutputs'];
      if (e.workflowExecutionCompletedEventAttributes) return ['job closed'];
      return [];
    });
    const stageActivities = ['inspectAsset', 'validateAsset', 'optimizeAsset', 'buildLods', 'processTextures', 'packageOutputs'];
    // With handovers the events between two stages are the HPC worker's: no local activity in between.
    expect(timeline).toEqual([
      `checkJobInput: settings, kept ${PRESET_SETTINGS[input.options.preset].retentionDays} days`,
      'publishJobEvents: started, stage-started inspect',
      ...STAGES.flatMap((stage, i) => [
        `activity ${stageActivities[i]}`,
        ...(i + 1 < STAGES.length && !handover ? [`publishJobEvents: stage-finished ${stage}, stage-started ${STAGES[i + 1]}`] : []),
      ]),
      // The expiry child is started in the same workflow task as `completed`; the job closes once it has.
      'child expireOutputs',
      'publishJobEvents: stage-finished package, completed',
      'job closed',
    ]);
    // One workflow task to start, one per stage's end, one for the child's start: the input check and publishing add none.
    const workflowTasks = (history.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes).length;
    expect(workflowTasks).toBe(1 + STAGES.length + 1);
    // Whoever published them, the stream is the same, in order, each once.
    expect(events.map(label)).toEqual(COMPLETE_STREAM);
  });

  it('re-sends, in order and before anything newer, the events Redis did not take during an outage: every stage still reaches the stream', async () => {
    // "Redis" is down while validate and optimize run: their stage events are refused, then it is back.
    let down = false;
    const mock = mockPipeline({
      async validateAsset() {
        down = true;
        return { errors: 0, warnings: 0, messages: [] };
      },
      async buildLods() {
        down = false;
        return [];
      },
    });
    const events = await withJob(env, workflowBundle, mock.activities, eventsOnceDone, input, () => !down);
    // Nothing lost, nothing twice, the order as published: the held ones go out first once Redis is back.
    expect(events.map(label)).toEqual(COMPLETE_STREAM);
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'keeps every stage event, in order and once, while Redis refuses publishes at random, handed over or not (seed %i)',
    async (seed) => {
      const random = seededRandom(seed);
      // Refused at random until the last stage runs; from then on Redis takes everything, so the job's
      // last publish (which nothing comes after to re-send it) goes out.
      let back = false;
      const mock = mockPipeline({}, async (call) => {
        if (call.activity === 'packageOutputs') back = true;
      });
      const events = await withJob(env, workflowBundle, mock.activities, eventsOnceDone, input, () => back || random() < 0.5, {
        handover: seed % 4 !== 0,
      });
      expect(events.map(label)).toEqual(COMPLETE_STREAM);
    },
  );

  it('fails at once on an invalid asset, without retrying, removes partial outputs and passes on the validator messages', async () => {
    const messages = [{ code: 'ACCESSOR_INDEX_OOB', message: 'Index 99 is out of bounds', severity: 'error', pointer: '/meshes/0' }];
    const mock = mockPipeline({
      async validateAsset() {
        throw ApplicationFailure.nonRetryable('TwoCubes.glb is not valid glTF: 1 error', 'INVALID_ASSET', ...messages);
      },
    });
    const { error, events, handle, description, expiryInput } = await runJob(mock.activities, async ({ handle, events }) => {
      const error = await handle.result().then(
        () => null,
        (err: unknown) => err,
      );
      const description = await handle.describe();
      // A failed job's data (and its hold on its uploads, kept for a retry) expire like a completed job's.
      // Not waited out here: skipping time would fire the other tests' timers, whose workers are gone.
      const expiry = await retentionTimerOf(env, handle.workflowId);
      const started = (await expiry.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      const expiryInput = JSON.parse(Buffer.from(started!).toString('utf8')) as { jobId: string; expiresAt: string };
      return { error, events, handle, description, expiryInput };
    });

    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(description.status.name).toBe('FAILED');
    expect(expiryInput.jobId).toBe(handle.workflowId);
    // game-ready keeps 7 days, counted from the failure.
    expect(Math.abs(Date.parse(expiryInput.expiresAt) - (description.closeTime!.getTime() + 7 * DAY_MS))).toBeLessThan(60_000);
    expect(mock.namesFor(handle.workflowId)).toEqual(['inspectAsset', 'validateAsset', 'cleanupJob']);
    expect(mock.calls.find((c) => c.activity === 'cleanupJob')?.request).toEqual({ jobId: handle.workflowId, keepOutputs: false });
    const failed = events.at(-1);
    expect(failed).toMatchObject({
      event: 'failed',
      stage: 'validate',
      error: { type: 'INVALID_ASSET', message: 'TwoCubes.glb is not valid glTF: 1 error', details: messages },
    });
    expect((await upsertedSearchAttributes(handle)).at(-1)).toEqual({ [ASSET_OUTCOME.name]: 'failed' });
    await saveHistoryIfRequested('process-asset-invalid', handle);
  });

  it('retries a transient failure with backoff and then completes', async () => {
    let attempts = 0;
    const mock = mockPipeline({
      async optimizeAsset() {
        if (++attempts < 3) throw new Error('HPC scratch disk briefly unavailable');
        return TWO_CUBES_OPTIMIZE;
      },
    });
    const { report, handle } = await runJob(mock.activities, async ({ handle }) => {
      const report = await handle.result();
      await retentionTimerOf(env, handle.workflowId);
      return { report, handle };
    });
    expect(report.jobId).toBe(handle.workflowId);
    expect(mock.calls.filter((c) => c.workflowId === handle.workflowId && c.activity === 'optimizeAsset').map((c) => c.attempt)).toEqual([
      1, 2, 3,
    ]);
    expect(mock.namesFor(handle.workflowId)).not.toContain('cleanupJob');
    // Each compute step carries a summary the Temporal UI shows beside it.
    const summaries = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
      const data = e.activityTaskScheduledEventAttributes ? e.userMetadata?.summary?.data : undefined;
      return data ? [JSON.parse(Buffer.from(data).toString('utf8')) as string] : [];
    });
    expect(summaries).toContain('Building LODs of TwoCubes.glb');
    expect(summaries).toContain('Packaging TwoCubes.glb');
  });

  it('cancels mid-stage: the stage sees the cancel, cleanup runs, the artist sees cancelling then cancelled', async () => {
    let lodsStarted = false;
    let lodsSawCancel = false;
    const mock = mockPipeline({
      async buildLods() {
        lodsStarted = true;
        try {
          // Heartbeats are how a cancel reaches an activity; a real stage heartbeats its progress.
          for (;;) {
            heartbeat();
            await activitySleep(100);
          }
        } catch (err) {
          lodsSawCancel = err instanceof ActivityCancelled;
          throw err;
        }
      },
    });
    const { error, events, handle, description, during } = await runJob(mock.activities, async ({ handle, events }) => {
      await waitFor(() => lodsStarted, { timeoutMs: 20_000, what: 'the lods stage to start' });
      const during = await handle.query(progressQuery);
      await handle.cancel();
      const error = await handle.result().then(
        () => null,
        (err: unknown) => err,
      );
      return { error, events, handle, during, description: await handle.describe() };
    });

    expect(during).toEqual({ stage: 'lods', stageIndex: 3, stageCount: 6, status: 'running' });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(description.status.name).toBe('CANCELLED');
    expect(lodsSawCancel).toBe(true);
    // Cleanup runs only once the stage has stopped writing.
    expect(mock.namesFor(handle.workflowId).slice(-2)).toEqual(['buildLods', 'cleanupJob']);
    expect(mock.calls.find((c) => c.activity === 'cleanupJob' && c.workflowId === handle.workflowId)?.request).toEqual({
      jobId: handle.workflowId,
      keepOutputs: false,
    });
    expect(events.slice(-3).map((e) => [e.event, e.stage])).toEqual([
      ['stage-started', 'lods'],
      ['cancelling', 'lods'],
      ['cancelled', 'lods'],
    ]);
    expect((await upsertedSearchAttributes(handle)).at(-1)).toEqual({ [ASSET_OUTCOME.name]: 'cancelled' });
    await saveHistoryIfRequested('process-asset-cancelled', handle);
  });

  it("lets an engineer change a running job's retention by update, and refuses nonsense", async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let texturesStarted = false;
    const mock = mockPipeline({
      async processTextures() {
        texturesStarted = true;
        await released;
        return [];
      },
    });
    const { report, refused, answered } = await runJob(mock.activities, async ({ handle }) => {
      await waitFor(() => texturesStarted, { timeoutMs: 20_000, what: 'the textures stage' });
      const refused = await handle.executeUpdate(setRetentionDaysUpdate, { args: [0] }).then(
        () => null,
        (err: unknown) => err,
      );
      const answered = await handle.executeUpdate(setRetentionDaysUpdate, { args: [30] });
      release();
      return { report: await handle.result(), refused, answered };
    });
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toContain('retention must be 1 to 365 days, not 0');
    expect(answered).toBe(30);
    expect(report.settings.retentionDays).toBe(30);
    // expiresAt is 30 days after completion (workflow time), not the preset's 7.
    const days = (Date.parse(report.expiresAt) - Date.now()) / DAY_MS;
    expect(days).toBeGreaterThan(29);
  });

  it('raises the AssetStalled flag while a stage reports a stall, and lowers it when the stage moves again', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let stalledSignalled = false;
    const mock = mockPipeline({
      async processTextures() {
        // What activities/hpc-activities.ts does when its StallWatch fires, then when progress resumes.
        const ctx = activityContext();
        const job = ctx.client.workflow.getHandle(ctx.info.workflowExecution!.workflowId);
        await job.signal(stallChangedSignal, true);
        stalledSignalled = true;
        await released;
        await job.signal(stallChangedSignal, false);
        return [];
      },
    });
    const { during, after } = await runJob(mock.activities, async ({ handle }) => {
      await waitFor(() => stalledSignalled, { timeoutMs: 20_000, what: 'the stall signal' });
      const during = await waitFor(
        async () => ((await handle.describe()).typedSearchAttributes.get(ASSET_STALLED) === true ? handle.describe() : undefined),
        { timeoutMs: 20_000, what: 'AssetStalled to be set' },
      );
      release();
      await handle.result();
      return { during, after: await handle.describe() };
    });
    expect(during.typedSearchAttributes.get(ASSET_STAGE)).toBe('textures');
    expect(after.typedSearchAttributes.get(ASSET_STALLED)).toBe(false);
    expect(after.status.name).toBe('COMPLETED');
  });
});

/**
 * On its own test server: the Java test server leaves time locked once a child whose parent has closed
 * completes (it waits for the parent to take the notification), so no later test could skip time.
 */
describe("retention of a completed job's outputs (time-skipping)", () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('deletes the outputs once the retention has run out, after the job itself has completed', async () => {
    const mock = mockPipeline();
    const retentionDays = 3;
    const { report, job, expiryStatus, deletedAtMs } = await withJob(
      env,
      workflowBundle,
      mock.activities,
      async ({ handle }) => {
        const report = await handle.result();
        const job = await handle.describe();
        const expiry = await retentionTimerOf(env, handle.workflowId);
        const expiryStatus = (await expiry.describe()).status.name;
        // Waiting on the result lets the test server skip the three days.
        await expiry.result();
        return { report, job, expiryStatus, deletedAtMs: await env.currentTimeMs() };
      },
      { ...input, options: { preset: 'game-ready', retentionDays } },
    );

    expect(job.status.name).toBe('COMPLETED');
    expect(expiryStatus).toBe('RUNNING');
    const deletes = mock.calls.filter((c) => c.activity === 'deleteOutputs');
    expect(deletes.map((c) => c.request)).toContainEqual({ jobId: report.jobId });
    expect(deletedAtMs).toBeGreaterThanOrEqual(Date.parse(report.expiresAt));
    // expiresAt is the completion time plus the retention (workflow time, so within the job's last task).
    expect(Math.abs(Date.parse(report.expiresAt) - (job.closeTime!.getTime() + retentionDays * DAY_MS))).toBeLessThan(60_000);
  });
});

describe('processAsset pinned to a host (time-skipping, mocked compute)', () => {
  // Its own server: skipping time fires the other tests' retention timers, which wait on the shared
  // queue that this test's only HPC worker does not poll.
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await createTimeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it("deletes a pinned job's outputs on its own host's queue, not the shared one", async () => {
    const mock = mockPipeline();
    const hpcQueue = 'hpc-host-b';
    const scheduledOn = await withJob(
      env,
      workflowBundle,
      mock.activities,
      async ({ handle }) => {
        await handle.result();
        const expiry = await retentionTimerOf(env, handle.workflowId);
        await expiry.result();
        const { events } = await expiry.fetchHistory();
        return (events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name ?? []);
      },
      { ...input, options: { preset: 'game-ready', retentionDays: 1, hpcQueue } },
    );
    // Only the host's worker polls hpc-host-b here, so the delete ran there or not at all.
    expect(scheduledOn).toEqual([hpcQueue]);
    expect(mock.calls.filter((c) => c.activity === 'deleteOutputs')).toHaveLength(1);
  });
});
