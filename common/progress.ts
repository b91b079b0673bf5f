import { z } from 'zod';
import { JobFailureCode } from './failures.js';

/**
 * The one message schema for job progress, shared by producers (activities, workflow events) and
 * consumers (API socket hub, web page, CLI). Socket protocol: docs/PROTOCOL.md.
 */

/** Owners become part of Redis channel names and workflow ids, so they are restricted to safe characters. */
export const OwnerId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._@-]+$/, 'may contain only letters, digits and . _ @ -');
export type OwnerId = z.infer<typeof OwnerId>;

export const JobId = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9._@-]+$/, 'is not a job id');
export type JobId = z.infer<typeof JobId>;

/** Fields a producer fills in; the sequence number is assigned atomically in Redis when published. */
export const ProgressFields = z.object({
  jobId: JobId,
  owner: OwnerId,
  stage: z.string(),
  stageIndex: z.number().int().nonnegative(),
  stageCount: z.number().int().positive(),
  done: z.number().nonnegative(),
  total: z.number().nonnegative(),
  unit: z.string(),
  /** Whole-job percent, 0..100. */
  percent: z.number().min(0).max(100),
  message: z.string(),
  /** Estimated milliseconds left in this stage from the measured rate; null until it can be estimated. */
  etaMs: z.number().nonnegative().nullable(),
  attempt: z.number().int().positive(),
  /** Producer clock, ms since epoch. */
  ts: z.number(),
});
export type ProgressFields = z.infer<typeof ProgressFields>;

export const JOB_EVENT_KINDS = [
  'queued',
  'started',
  'stage-started',
  'stage-finished',
  'retrying',
  'stalled',
  'unstalled',
  'cancelling',
  'cancelled',
  'failed',
  'completed',
  'terminated',
] as const;
export const JobEventKind = z.enum(JOB_EVENT_KINDS);
export type JobEventKind = z.infer<typeof JobEventKind>;

/** Terminal event kinds: after one of these no further message is published for the job. */
export const TERMINAL_EVENTS: ReadonlySet<JobEventKind> = new Set(['cancelled', 'failed', 'completed', 'terminated']);

/** Why a job failed, as the artist is told: a catalogue code (common/failures.ts) and its message. */
export const JobFailureReason = z.object({
  type: JobFailureCode,
  message: z.string(),
  /** e.g. the glTF-Validator messages that made the asset invalid. */
  details: z.array(z.unknown()).optional(),
});
export type JobFailureReason = z.infer<typeof JobFailureReason>;

export const JobEventFields = z.object({
  jobId: JobId,
  owner: OwnerId,
  event: JobEventKind,
  stage: z.string().optional(),
  message: z.string(),
  /** Why the job failed, when event is failed. */
  error: JobFailureReason.optional(),
  /** Result summary when event is completed. */
  result: z.record(z.string(), z.unknown()).optional(),
  /** The workflow run that published it: a terminal event of an older run is superseded by a Temporal reset. */
  runId: z.string().min(1).max(64).optional(),
  /** The job's preset, on terminal events (for the jobs-finished metric). */
  preset: z.string().max(32).optional(),
  /** The job's stages in order, on `started` (its plan: common/stages.ts). */
  stages: z.array(z.string().max(40)).max(32).optional(),
  ts: z.number(),
});
export type JobEventFields = z.infer<typeof JobEventFields>;

const seq = z.number().int().positive();
export const ProgressMessage = ProgressFields.extend({ type: z.literal('progress'), seq });
export type ProgressMessage = z.infer<typeof ProgressMessage>;
export const JobEventMessage = JobEventFields.extend({ type: z.literal('event'), seq });
export type JobEventMessage = z.infer<typeof JobEventMessage>;

/** What travels on `progress:{owner}:{jobId}` and is stored in the job's replay log. */
export const JobMessage = z.discriminatedUnion('type', [ProgressMessage, JobEventMessage]);
export type JobMessage = z.infer<typeof JobMessage>;

/** Redis channel for one job's messages, keyed by owner so a pattern subscription can follow all of a user's jobs. */
export function progressChannel(owner: string, jobId: string): string {
  return `progress:${owner}:${jobId}`;
}
/** Pattern matching every job channel of one owner (OwnerId excludes glob characters). */
export function ownerPattern(owner: string): string {
  return `progress:${owner}:*`;
}
