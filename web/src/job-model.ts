import { BUILTIN_STAGE_NAMES } from '../../common/stages.js';
import { TERMINAL_EVENTS, type JobEventKind, type JobEventMessage, type ProgressMessage } from '../../common/progress.js';
import type { QueueMessage, SnapshotMessage } from '../../common/socket-protocol.js';
import type { JobSummaryBody } from './server-frames.js';

/** What the artist sees a job doing. */
export type JobPhase = 'queued' | 'running' | 'cancelling' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_PHASES: ReadonlySet<JobPhase> = new Set(['completed', 'failed', 'cancelled']);

/** No message for this long while a job runs marks it as stalled (the HPC heartbeat timeout is 30 s). */
export const STALL_AFTER_MS = 45_000;

/** One job as the page knows it, built from the REST summary and then the socket's messages. */
export interface JobView {
  jobId: string;
  assetName: string;
  /** ms since epoch. */
  startedAt: number;
  closedAt: number | null;
  phase: JobPhase;
  /** Highest seq applied: passed as lastSeq when the socket reconnects. */
  lastSeq: number;
  progress: ProgressMessage | null;
  lastEvent: JobEventMessage | null;
  /** Page clock when the job last showed a sign of life, for the stalled mark. */
  lastHeardAt: number;
  attempt: number;
  /** The artist asked to cancel and the server has not confirmed yet. */
  cancelRequested: boolean;
  /** The HPC worker reported the running stage stalled (a `stalled` event not yet followed by `unstalled`). */
  serverStalled: boolean;
  /** The last stage the workflow announced finished: a stage at 100 % is still running until then. */
  finishedStage: string | null;
  /** When the job's current run started, once a reset in Temporal started a new one (ms, producer clock). */
  runStartedAt: number | null;
  /** Its place among the jobs waiting for the HPC machines, once the REST summary told. */
  priority: JobSummaryBody['priority'];
  /** The job this one retries. */
  retryOf: string | null;
  /** Who asked for the retry and when, from the job's memo. */
  retry: JobSummaryBody['retry'];
  /** Its stage's place in the line for an HPC slot while it waits (a `queue` frame), else null. */
  queuePlace: QueueMessage | null;
  /** `batch` for a batch of assets (its asset jobs name it as batchId), else `asset`. */
  kind: JobSummaryBody['kind'];
  /** The batch this asset job is one of, else null. */
  batchId: string | null;
  /** The job's stages in order, from its `started` event (its plan); null until then. */
  stageNames: string[] | null;
}

const STATUS_PHASE: Record<string, JobPhase> = {
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  TIMED_OUT: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'cancelled',
};

const EVENT_PHASE: Record<JobEventKind, JobPhase> = {
  queued: 'queued',
  started: 'running',
  'stage-started': 'running',
  'stage-finished': 'running',
  retrying: 'running',
  stalled: 'running',
  unstalled: 'running',
  cancelling: 'cancelling',
  cancelled: 'cancelled',
  failed: 'failed',
  completed: 'completed',
  terminated: 'cancelled',
};

/** A job from the REST list, before any socket message. */
export function jobFromSummary(summary: JobSummaryBody, now: number): JobView {
  return {
    jobId: summary.jobId,
    assetName: summary.assetName || summary.jobId,
    startedAt: Date.parse(summary.startTime) || now,
    closedAt: summary.closeTime ? Date.parse(summary.closeTime) : null,
    phase: STATUS_PHASE[summary.status] ?? 'running',
    lastSeq: 0,
    progress: null,
    lastEvent: null,
    lastHeardAt: now,
    attempt: 1,
    cancelRequested: false,
    serverStalled: false,
    finishedStage: null,
    runStartedAt: null,
    priority: summary.priority,
    retryOf: summary.retryOf,
    retry: summary.retry,
    queuePlace: null,
    kind: summary.kind,
    batchId: summary.batchId,
    stageNames: null,
  };
}

/** A job the page has just started (or first heard of on the socket), before its summary arrives. */
export function newJob(jobId: string, assetName: string, now: number): JobView {
  return {
    ...jobFromSummary(
      {
        jobId,
        assetName,
        preset: null,
        priority: null,
        retryOf: null,
        retry: null,
        kind: 'asset',
        batchId: null,
        status: 'RUNNING',
        stage: null,
        outcome: null,
        startTime: '',
        closeTime: null,
      },
      now,
    ),
    phase: 'queued',
  };
}

/** Takes the REST summary's fields without losing what the socket already told. */
export function mergeSummary(job: JobView, summary: JobSummaryBody): JobView {
  const fromRest = jobFromSummary(summary, job.lastHeardAt);
  const phase = TERMINAL_PHASES.has(job.phase) ? job.phase : TERMINAL_PHASES.has(fromRest.phase) ? fromRest.phase : job.phase;
  return {
    ...job,
    assetName: fromRest.assetName,
    startedAt: fromRest.startedAt,
    closedAt: fromRest.closedAt ?? job.closedAt,
    phase,
    priority: fromRest.priority ?? job.priority,
    retryOf: fromRest.retryOf ?? job.retryOf,
    retry: fromRest.retry ?? job.retry,
    kind: fromRest.kind === 'batch' ? 'batch' : job.kind,
    batchId: fromRest.batchId ?? job.batchId,
  };
}

/**
 * A place in the HPC queue line: outside the job's sequence, so any newer one replaces the place shown
 * (an older one, by its ts, changes nothing); `waiting: false` means a machine took the stage.
 */
export function applyQueuePlace(job: JobView, place: QueueMessage): JobView {
  if (job.queuePlace && place.ts < job.queuePlace.ts) return job;
  if (TERMINAL_PHASES.has(job.phase)) return { ...job, queuePlace: null };
  return { ...job, queuePlace: place.waiting ? place : null };
}

/** Applies one live or replayed message; older or repeated ones (seq not above lastSeq) change nothing. */
export function applyMessage(job: JobView, message: ProgressMessage | JobEventMessage, now: number): JobView {
  if (message.seq <= job.lastSeq) return job;
  const next: JobView = { ...job, lastSeq: message.seq, lastHeardAt: now };
  // A stage that reports progress, or a job that moves on, is no longer waiting for a slot.
  if (message.type === 'progress' || message.event !== 'stage-started') next.queuePlace = null;
  if (message.type === 'progress') {
    if (TERMINAL_PHASES.has(job.phase)) return next;
    next.progress = message;
    next.attempt = message.attempt;
    if (next.phase === 'queued') next.phase = 'running';
    return next;
  }
  next.lastEvent = message;
  if (message.event === 'stage-finished' && message.stage) next.finishedStage = message.stage;
  if (message.event === 'started' && message.stages?.length) next.stageNames = message.stages;
  // A `started` from another run than the one the page followed: a reset in Temporal, timed from its restart.
  if (message.event === 'started' && job.lastEvent && message.runId && job.lastEvent.runId !== message.runId) {
    next.runStartedAt = message.ts;
    next.closedAt = null;
    next.finishedStage = null;
  }
  // Progress messages also come from the worker's heartbeat tick, so only these events say whether a stage moves.
  if (message.event === 'stalled') next.serverStalled = true;
  else if (message.event !== 'retrying' && message.event !== 'cancelling') next.serverStalled = false;
  const phase = EVENT_PHASE[message.event];
  // A cancel in flight stays "cancelling" through the job's last non-terminal messages.
  next.phase = job.phase === 'cancelling' && !TERMINAL_EVENTS.has(message.event) ? 'cancelling' : phase;
  if (TERMINAL_EVENTS.has(message.event)) {
    next.closedAt = message.ts;
    next.cancelRequested = false;
  }
  return next;
}

/**
 * Applies a snapshot: the job's latest progress and event replace what the page had. Unlike a live
 * message, the snapshot's progress is kept even for a finished job, so its stage list shows where it got to.
 */
export function applySnapshot(job: JobView, snapshot: Omit<SnapshotMessage, 'type' | 'jobId'>, now: number): JobView {
  // A reset snapshot (docs/PROTOCOL.md): the server lost the job's data, so its seq starts again lower.
  // Drop what the page showed and continue from the snapshot; any other older snapshot is stale.
  if (snapshot.seq < job.lastSeq && !snapshot.reset) return job;
  let next: JobView = snapshot.reset
    ? {
        ...job,
        progress: null,
        lastEvent: null,
        serverStalled: false,
        finishedStage: null,
        attempt: 1,
        phase: TERMINAL_PHASES.has(job.phase) ? job.phase : 'running',
        lastSeq: 0,
        lastHeardAt: now,
      }
    : { ...job, lastSeq: 0, lastHeardAt: now };
  if (snapshot.event) next = applyMessage(next, snapshot.event, now);
  if (snapshot.progress) {
    const p = snapshot.progress;
    next.progress = p;
    next.attempt = p.attempt;
    if (next.phase === 'queued') next.phase = 'running';
  }
  return { ...next, lastSeq: snapshot.seq };
}

/** The artist pressed cancel: shown as "cancelling…" until the server confirms. */
export function markCancelling(job: JobView): JobView {
  return TERMINAL_PHASES.has(job.phase) ? job : { ...job, phase: 'cancelling', cancelRequested: true };
}

export type StageState = 'done' | 'active' | 'pending' | 'failed' | 'cancelled';
export interface StageRow {
  name: string;
  state: StageState;
  /** 0..1 within the stage. */
  fraction: number;
}

/** The job's stages with done/active/pending, from the latest progress message. */
export function stageRows(job: JobView): StageRow[] {
  const p = job.progress;
  // The job's own plan once its `started` event arrived; the registry's built-in stages until then.
  const known = job.stageNames ?? BUILTIN_STAGE_NAMES;
  const count = p?.stageCount ?? known.length;
  const names: string[] = Array.from({ length: count }, (_, i) => known[i] ?? `step ${i + 1}`);
  if (p) names[p.stageIndex] = p.stage;
  return names.map((name, i) => {
    if (job.phase === 'completed') return { name, state: 'done', fraction: 1 };
    if (!p || i > p.stageIndex) return { name, state: 'pending', fraction: 0 };
    if (i < p.stageIndex) return { name, state: 'done', fraction: 1 };
    const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
    if (job.phase === 'failed') return { name, state: 'failed', fraction };
    if (job.phase === 'cancelled') return { name, state: 'cancelled', fraction };
    // At 100 % a stage may still have work after its thread (e.g. the gltfpack comparison): done only once announced.
    return { name, state: job.finishedStage === p.stage ? 'done' : 'active', fraction };
  });
}

/** Whole-job percent: 100 once completed, else the latest progress message's, short of 100 while it runs. */
/**
 * A batch's percent: each of its assets counts the same, an ended one as whole, a running one by its own
 * percent; from the batch's per-asset events when its asset jobs are not (yet) known to the page.
 */
export function batchPercent(batch: JobView, assets: readonly JobView[]): number {
  if (batch.phase === 'completed') return 100;
  const counts = batch.lastEvent?.result as { total?: number; done?: number; failed?: number; cancelled?: number } | undefined;
  const total = Math.max(counts?.total ?? 0, assets.length);
  if (total === 0) return 0;
  const ended = (counts?.done ?? 0) + (counts?.failed ?? 0) + (counts?.cancelled ?? 0);
  const fromAssets = assets.reduce((sum, a) => sum + (TERMINAL_PHASES.has(a.phase) ? 100 : jobPercent(a)), 0) / total;
  return Math.min(99, Math.max((ended / total) * 100, fromAssets));
}

export function jobPercent(job: JobView): number {
  if (job.phase === 'completed') return 100;
  return Math.min(99, job.progress?.percent ?? 0);
}

/** Running (or cancelling) and either reported stalled by the HPC worker, or silent for stallAfterMs. */
export function isStalled(job: JobView, now: number, stallAfterMs = STALL_AFTER_MS): boolean {
  return !TERMINAL_PHASES.has(job.phase) && (job.serverStalled || now - job.lastHeardAt > stallAfterMs);
}

/** Time the job has run: since its current run started, when a reset started a new one. */
export function elapsedMs(job: JobView, now: number): number {
  return Math.max(0, (job.closedAt ?? now) - (job.runStartedAt ?? job.startedAt));
}

/**
 * The time left in the running stage, or null when it cannot be told honestly: before any work was
 * measured (a 0 % stage has no rate yet) and once the stage's counted work is done.
 */
export function stageEtaMs(job: JobView): number | null {
  const p = job.progress;
  if (!p || p.etaMs === null || TERMINAL_PHASES.has(job.phase)) return null;
  const fraction = p.total > 0 ? p.done / p.total : 0;
  return fraction > 0 && fraction < 1 ? p.etaMs : null;
}

/** Newest first. */
export function byNewest(a: JobView, b: JobView): number {
  return b.startedAt - a.startedAt || b.jobId.localeCompare(a.jobId);
}
