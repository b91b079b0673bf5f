import { z } from 'zod';
import { JobEventMessage, ProgressMessage } from '../common/progress.js';

/** Messages the server sends on /ws (docs/PROTOCOL.md, common/socket-protocol.ts), parsed at the edge. */
export const ServerMessage = z.discriminatedUnion('type', [
  ProgressMessage,
  JobEventMessage,
  z.object({
    type: z.literal('snapshot'),
    jobId: z.string(),
    seq: z.number().int().nonnegative(),
    progress: ProgressMessage.nullable(),
    event: JobEventMessage.nullable(),
  }),
  z.object({ type: z.literal('subscribed'), jobId: z.string().optional(), all: z.literal(true).optional() }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string(), jobId: z.string().optional() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** What a job's watch ends with. */
export type JobOutcome = 'completed' | 'failed' | 'cancelled' | 'terminated';

/** The outcome a Temporal execution status stands for, or null while the job runs. */
export function outcomeOfStatus(status: string): JobOutcome | null {
  switch (status) {
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
    case 'TIMED_OUT':
      return 'failed';
    case 'CANCELLED':
    case 'CANCELED':
      return 'cancelled';
    case 'TERMINATED':
      return 'terminated';
    default:
      return null;
  }
}
