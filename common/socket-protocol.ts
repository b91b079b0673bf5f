import { z } from 'zod';
import type { SocketErrorCode } from './failures.js';
import { JobId, type JobEventMessage, type ProgressMessage } from './progress.js';

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
export interface SnapshotMessage {
  type: 'snapshot';
  jobId: string;
  seq: number;
  progress: ProgressMessage | null;
  event: JobEventMessage | null;
  /**
   * Present when the server holds less than the client's lastSeq (Redis lost or expired the job's
   * data): the client drops what it has for the job and continues from this snapshot's seq.
   */
  reset?: true;
}

export interface SubscribedMessage {
  type: 'subscribed';
  jobId?: string;
  all?: true;
}

/** The codes of a socket `error` frame, from the failure catalogue. */
export type ErrorCode = SocketErrorCode;
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  jobId?: string;
}

/** Everything the server sends on /ws. */
export type ServerMessage = SubscribedMessage | SnapshotMessage | ProgressMessage | JobEventMessage | ErrorMessage;

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
