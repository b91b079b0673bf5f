import { WorkflowExecutionAlreadyStartedError, type Duration } from '@temporalio/common';
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ProcessAssetInput } from '../common/jobs.js';
import type { PipelineActivities, PipelineReport, PipelineSettings, StageRequest } from '../common/pipeline.js';
import type { JobInputActivities } from '../activities/index.js';
import { CORE_STAGES, PLAN_BEFORE_REGISTRY } from '../common/core-stages.js';
import { mergeSettings } from '../common/preset-settings.js';
import type { PlannedStage, StageResultOf } from '../common/stages.js';
import { ASSET_OUTCOME, ASSET_STAGE, ASSET_STALLED } from '../common/search-attributes.js';
import { stallChangedSignal } from '../common/signals.js';
import { unwrapHandover, type StageHandover } from '../common/stage-handover.js';
import { HPC_TASK_QUEUE } from '../common/task-queues.js';
import { expireOutputs } from './expire-outputs.js';
import { FAILURES } from '../common/failure-catalogue.js';
import { describeFailure } from './failure-reasons.js';
import { jobEventPublisher, publishesEventsLocally } from './job-events.js';
import { progressQuery, setRetentionDaysUpdate, type AssetProgress } from './queries.js';

/** A stage's request, with its handover to the next stage when it has one. */
type HandedOverRequest = StageRequest & { handover?: StageHandover };

/**
 * A compute stage on an HPC machine, heartbeating, retried with backoff unless the asset itself is bad.
 * Its timeouts come from the job's plan (common/stages.ts), which the job carries from its start.
 */
function stageActivity(taskQueue: string, stage: PlannedStage, summary: string): (request: HandedOverRequest) => Promise<unknown> {
  const activities = proxyActivities<Record<string, (request: HandedOverRequest) => Promise<unknown>>>({
    taskQueue,
    startToCloseTimeout: stage.startToCloseTimeout as Duration,
    // What the step does, on the activity in the Temporal UI (e.g. "Building LODs of DamagedHelmet.glb").
    summary,
    // A dead HPC worker is noticed within this, and the stage retried from its last checkpoint.
    heartbeatTimeout: stage.heartbeatTimeout as Duration,
    // Cleanup must not run while the stage still writes into the work folder: wait until it has stopped.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [FAILURES.INVALID_ASSET.code],
    },
  });
  return activities[stage.activity]!;
}

/**
 * The job's cleanup, on the shared `hpc` queue or, when the job is pinned with options.hpcQueue, on that
 * host's own queue (like its stages, so a pinned job never needs a worker on the shared queue).
 * Cleanup is idempotent and quick; it need not heartbeat.
 */
function cleanupOn(taskQueue: string) {
  return proxyActivities<Pick<PipelineActivities, 'cleanupJob'>>({
    taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
  });
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The input check (activities/job-input-activities.ts): pure CPU in the orchestrator worker, so tight limits. */
const inputCheck = proxyLocalActivities<JobInputActivities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '40 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * The job's settings. The API parsed its options and plan already, so this fails only for a caller that
 * skipped that, and tells it why. Since JOB_INPUT_CHECK_PATCH a local activity checks them: the
 * workflow bundle holds no zod (it would be evaluated again for every workflow the worker creates).
 * Runs from before it checked them in the workflow as they started, so on replay their input is known
 * good, and merging the preset with the options gives the settings that check gave.
 */
async function settingsOf(input: ProcessAssetInput, checksLocally: boolean): Promise<PipelineSettings> {
  const invalid = (message: string) => ApplicationFailure.nonRetryable(message, FAILURES.INVALID_OPTIONS.code);
  if (!checksLocally) {
    try {
      return mergeSettings(input.options);
    } catch (err) {
      throw invalid(`The job options are not valid: ${String(err)}`);
    }
  }
  const checked = await inputCheck.checkJobInput({ options: input.options, plan: input.plan });
  if ('invalid' in checked) throw invalid(checked.invalid);
  return checked.settings;
}

/**
 * One artist's upload processed into game-ready outputs: the stages of its plan in order (input.plan,
 * resolved from the registry in common/stages.ts when the job started), each a heartbeating activity on
 * the HPC queue. A job without a plan (started before the registry) runs PLAN_BEFORE_REGISTRY, which
 * issues exactly the commands those jobs recorded, so they replay unchanged without a patch. The workflow id is the job id. A cancel or a failure removes the partial
 * outputs; a completed job's outputs are deleted after settings.retentionDays by an expireOutputs child.
 *
 * Versioning: running jobs replay this code. A change that adds, removes or reorders commands
 * (activities, timers, children, search-attribute upserts) goes behind `patched('<change-id>')`, and
 * workflows/replay.test.ts replays the saved histories in workflows/histories/ to catch what was missed.
 */
export async function processAsset(input: ProcessAssetInput): Promise<PipelineReport> {
  const jobId = workflowInfo().workflowId;
  // Decided once, before any other command: see publishesEventsLocally.
  const eventsInTask = publishesEventsLocally();
  // Likewise decided once: whether each stage that has a next one hands over to it (STAGE_HANDOVER_PATCH).
  const handsOver = eventsInTask && patched(STAGE_HANDOVER_PATCH);
  // Likewise: whether a local activity checks the input (JOB_INPUT_CHECK_PATCH).
  const checksInputLocally = patched(JOB_INPUT_CHECK_PATCH);
  const taskQueue = input.options.hpcQueue ?? HPC_TASK_QUEUE;
  const events = jobEventPublisher(jobId, input.owner, {
    local: eventsInTask,
    name: input.assetName,
    hpcQueue: taskQueue,
  });
  const { publish, publishWithNext } = events;
  const cleanup = cleanupOn(taskQueue);
  const plan = input.plan ?? PLAN_BEFORE_REGISTRY;
  const progress: AssetProgress = { stage: null, stageIndex: null, stageCount: plan.length, status: 'running' };
  setHandler(progressQuery, () => progress);
  // The HPC activity says when its stage stalls and moves again; engineers find stalled jobs by this attribute.
  setHandler(stallChangedSignal, (stalled) => {
    upsertSearchAttributes([{ key: ASSET_STALLED, value: stalled }]);
  });
  // Set once the settings are resolved; an engineer may change it until the job completes.
  let retentionDays: number | null = null;
  setHandler(
    setRetentionDaysUpdate,
    (days) => {
      retentionDays = days;
      return days;
    },
    {
      validator: (days) => {
        if (!Number.isFinite(days) || days <= 0 || days > 365) throw new Error(`retention must be 1 to 365 days, not ${days}`);
        if (progress.status !== 'running') throw new Error(`the job is ${progress.status}; its outputs' expiry is already set`);
      },
    },
  );

  // Announced as soon as the cancel arrives: the running stage may take a while to stop.
  let cancelling: Promise<unknown> | undefined;
  const announceCancelling = () =>
    (cancelling ??= CancellationScope.nonCancellable(() => {
      progress.status = 'cancelling';
      return publish('cancelling', `Cancelling ${input.assetName}`, { stage: progress.stage ?? undefined });
    }));
  CancellationScope.current().cancelRequested.catch(announceCancelling);

  const finish = (outcome: 'completed' | 'failed' | 'cancelled') => {
    progress.status = outcome;
    upsertSearchAttributes([{ key: ASSET_OUTCOME, value: outcome }]);
  };

  try {
    // Followed by the first stage's start, or by `failed` for options that cannot be resolved.
    await publishWithNext('started', `Processing ${input.assetName}`, { stages: plan.map((s) => s.name) });
    const settings = await settingsOf(input, checksInputLocally);
    retentionDays ??= settings.retentionDays;
    const request: StageRequest = { input, settings };
    const results = new Map<string, unknown>();
    let handedOver = false;
    for (const [index, stage] of plan.entries()) {
      progress.stage = stage.name;
      progress.stageIndex = index;
      upsertSearchAttributes([{ key: ASSET_STAGE, value: stage.name }]);
      const summary = `${stage.label} ${input.assetName}`;
      // A stage handed over to by the one before has had its start published (or held, for what of the
      // handover did not go out, and sent now).
      if (handedOver) await events.flush();
      else await publish('stage-started', summary, { stage: stage.name });
      const next = plan[index + 1];
      // Not while events are held: a handover published now would overtake them in the stream.
      const handover =
        handsOver && next && !events.holding()
          ? events.handover(
              ['stage-finished', `${summary}: done`, { stage: stage.name }],
              ['stage-started', `${next.label} ${input.assetName}`, { stage: next.name }],
            )
          : undefined;
      const { result, seqs } = unwrapHandover(
        await stageActivity(taskQueue, stage, summary)(handover ? { ...request, handover } : request),
      );
      results.set(stage.name, result);
      if (handover) events.handedOver(handover, seqs);
      // Always followed by the next stage's start or the job's outcome, in the same workflow task.
      else await publishWithNext('stage-finished', `${summary}: done`, { stage: stage.name });
      handedOver = handover !== undefined;
    }
    // Each activity checked its result against its stage's schema before returning it.
    const resultOf = <N extends (typeof CORE_STAGES)[number]>(name: N) => results.get(name) as StageResultOf<N>;
    const stats = resultOf('inspect');
    const validation = resultOf('validate');
    const optimize = resultOf('optimize');
    const lods = resultOf('lods');
    const textures = resultOf('textures');
    const packaged = resultOf('package');
    const others = [...results].filter(([name]) => !(CORE_STAGES as readonly string[]).includes(name));

    const expiresAt = new Date(Date.now() + (retentionDays ?? settings.retentionDays) * DAY_MS).toISOString();
    const completedEvent = {
      preset: input.options.preset,
      result: {
        meshes: stats.meshes,
        vertices: stats.vertices,
        triangles: stats.triangles,
        textures: stats.textures.length,
        outputTriangles: packaged.stats.triangles,
        lods: lods.length,
        outputs: packaged.outputs.length,
        outputBytes: packaged.outputs.reduce((sum, file) => sum + file.bytes, 0),
        expiresAt,
      },
    };
    // A child, not a sleep here, so the artist's job closes as COMPLETED; ABANDON keeps the timer
    // alive after this workflow closes. Awaiting the start makes it durable before we return.
    const scheduleExpiry = () => startExpiry(jobId, expiresAt, input.options.hpcQueue);

    if (eventsInTask) {
      // The child's start is a command like the others: the artist need not wait a server round trip
      // for it. `completed` goes out in the same workflow task, and the job still closes only once the
      // child has started. Its start can only fail with "already started", which scheduleExpiry
      // accepts, so a `completed` announced here is never followed by `failed`.
      const expiryScheduled = scheduleExpiry();
      finish('completed');
      await publish('completed', `${input.assetName} is ready`, completedEvent);
      await expiryScheduled;
    } else {
      // Runs recorded before the patch: child started, then outcome and event, one round trip apart.
      await scheduleExpiry();
      finish('completed');
      await publish('completed', `${input.assetName} is ready`, completedEvent);
    }
    return {
      jobId,
      assetName: input.assetName,
      settings: { ...settings, retentionDays: retentionDays ?? settings.retentionDays },
      input: stats,
      validation,
      optimize,
      lods,
      textures,
      package: packaged,
      expiresAt,
      ...(others.length ? { stages: Object.fromEntries(others) } : {}),
    };
  } catch (err) {
    const cancelled = isCancellation(err);
    // The job's scope may be cancelled; cleanup and the last event must still happen.
    await CancellationScope.nonCancellable(async () => {
      if (cancelled) await announceCancelling();
      else progress.status = 'cleaning-up';
      await cleanUp(cleanup, jobId);
      // Its uploads stay for a retry as long as a completed job's outputs would, then go with the job.
      if (patched(EXPIRE_ENDED_JOBS)) {
        const days = retentionDays ?? 0;
        await startExpiry(jobId, new Date(Date.now() + days * DAY_MS).toISOString(), input.options.hpcQueue);
      }
      if (cancelled) {
        finish('cancelled');
        await publish('cancelled', `${input.assetName} was cancelled`, {
          stage: progress.stage ?? undefined,
          preset: input.options.preset,
        });
      } else {
        const reason = describeFailure(err);
        finish('failed');
        await publish('failed', reason.message, { stage: progress.stage ?? undefined, error: reason, preset: input.options.preset });
      }
    });
    throw err;
  }
}

/**
 * Since this patch, a stage that has a next one carries their handover in its request (common/stage-handover.ts):
 * the HPC worker publishes its `stage-finished` and the next `stage-started` as it ends, so no local
 * activity runs between two stages. Runs from before it publish those in a local activity, as recorded.
 */
const STAGE_HANDOVER_PATCH = 'stage-handover-by-hpc-worker';

/**
 * Since this patch, a local activity checks a job's options and plan and resolves its settings
 * (settingsOf); runs from before it did that in the workflow, with no command.
 */
const JOB_INPUT_CHECK_PATCH = 'job-input-checked-by-local-activity';

/**
 * A failed or cancelled job also gets an expireOutputs timer (which deletes all of a job's data and its
 * hold on its uploads), so nothing it stored outlives the retention.
 */
const EXPIRE_ENDED_JOBS = 'expire-ended-jobs';

/** Starts the job's expireOutputs child, abandoned so it outlives the job, and durable once this returns. */
async function startExpiry(jobId: string, expiresAt: string, hpcQueue: string | undefined): Promise<void> {
  try {
    await startChild(expireOutputs, {
      workflowId: `expire-outputs-${jobId}`,
      // A pinned job's outputs are on its host: delete them from there, not from the shared queue.
      args: [{ jobId, expiresAt, ...(hpcQueue ? { taskQueue: hpcQueue } : {}) }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    // A job reset from the Temporal UI after it ended: the first run's expiry timer still runs and keeps
    // its date. Same commands either way, so replay is unaffected.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    log.info('Outputs expiry already scheduled by an earlier run of this job', { jobId });
  }
}

/** Removes the job's checkpoints and partial outputs. A cleanup that keeps failing must not hide the job's own outcome. */
async function cleanUp(cleanup: Pick<PipelineActivities, 'cleanupJob'>, jobId: string): Promise<void> {
  try {
    await cleanup.cleanupJob({ jobId, keepOutputs: false });
  } catch (err) {
    log.error('Cleanup of the job folder failed; it must be removed by hand', { jobId, error: String(err) });
  }
}
