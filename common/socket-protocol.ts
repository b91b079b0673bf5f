import { z } from 'zod';
import { SocketErrorCode } from './failures.js';
import { JobEventMessage, JobId, OwnerId, ProgressMessage } from './progress.js';

/** Messages a client sends on /ws (docs/PROTOCOL.md). */
export const ClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('subscribe'), jobId: JobId, lastSeq: z.number().int().nonnegative().optional() }),
  z.object({ type: z.literal('unsubscribe'), jobId: JobId }),
  z.object({ type: z.literal('subscribeAll') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

/**
 * Sent on subscribe when the client has no lastSeq or asked for one the replay log no longer reaches,
 * and before the first live message of a job first seen through subscribeAll.
 */
export const SnapshotMessage = z.object({
  type: z.literal('snapshot'),
  jobId: JobId,
  /** The seq the snapshot brings the client to; 0 when nothing was published yet. */
  seq: z.number().int().nonnegative(),
  progress: ProgressMessage.nullable(),
  event: JobEventMessage.nullable(),
  /**
   * Present when the server holds less than the client's lastSeq (Redis lost or expired the job's
   * data): the client drops what it has for the job and continues from this snapshot's seq.
   */
  reset: z.literal(true).optional(),
});
export type SnapshotMessage = z.infer<typeof SnapshotMessage>;

export const SubscribedMessage = z.object({ type: z.literal('subscribed'), jobId: JobId.optional(), all: z.literal(true).optional() });
export type SubscribedMessage = z.infer<typeof SubscribedMessage>;

export const ErrorMessage = z.object({ type: z.literal('error'), code: SocketErrorCode, message: z.string(), jobId: JobId.optional() });
export type ErrorMessage = z.infer<typeof ErrorMessage>;
export type ErrorCode = SocketErrorCode;

/**
 * Where a job's stage stands in the line for an HPC slot (common/hpc-queue.ts), sent on every change of
 * that line while the stage waits, and once with `waiting: false` when a machine takes it. Not part of
 * the job's sequence: it carries no seq, is not replayed, and a newer one replaces an older one.
 */
export const QueueMessage = z.object({
  type: z.literal('queue'),
  jobId: JobId,
  owner: OwnerId,
  /** The HPC task queue it waits on (`hpc`, or the host queue the job is pinned to). */
  queue: z.string(),
  waiting: z.boolean(),
  /** Jobs that will start before this one (0: it is next). */
  ahead: z.number().int().nonnegative(),
  /** About how long until it starts, from recent stage durations over the machines' slots; null before any stage finished. */
  etaMs: z.number().nonnegative().nullable(),
  /** When the line changed (Redis's clock of the change, ms since epoch). */
  ts: z.number(),
});
export type QueueMessage = z.infer<typeof QueueMessage>;

/** Everything the server sends on /ws: the API builds these types, the page and the CLI parse with this schema. */
export const ServerMessage = z.discriminatedUnion('type', [
  ProgressMessage,
  JobEventMessage,
  QueueMessage,
  SnapshotMessage,
  SubscribedMessage,
  ErrorMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** WebSocket close codes the server uses (4000-4999 are the application's own). */
export const CLOSE_CODES = {
  AUTH_MISSING: 4401,
  AUTH_INVALID: 4403,
  AUTH_EXPIRED: 4419,
  TOO_MANY_BAD_MESSAGES: 4400,
  /** More messages than the per-socket rate allows. */
  TOO_MANY_MESSAGES: 4429,
  /** The user already holds as many sockets as allowed on this API process. */
  TOO_MANY_SOCKETS: 4430,
  SHUTTING_DOWN: 1012,
} as const;
