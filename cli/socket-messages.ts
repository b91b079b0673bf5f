import { ServerMessage } from '../common/socket-protocol.js';

/** Messages the server sends on /ws (docs/PROTOCOL.md): the one schema in common/socket-protocol.ts, parsed at the edge. */
export { ServerMessage };

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
