import { z } from 'zod';
import { JobId } from './progress.js';

/**
 * Control messages for the HPC workers, on a channel of their own (never relayed to artists' sockets).
 * `stop` goes out when a job's workflow accepts a cancel (its `cancelling` event, from the Web UI, the
 * API or the CLI alike): a worker running one of the job's stages stops the stage's CPU work at once,
 * instead of waiting for Temporal's cancel to come back with the answer to its next heartbeat. Temporal
 * stays the authority: the stage reports itself cancelled only once Temporal confirms it.
 */
export const JobControlMessage = z.object({
  type: z.literal('stop'),
  jobId: JobId,
  /** The workflow run that asked, when known. */
  runId: z.string().optional(),
  ts: z.number(),
});
export type JobControlMessage = z.infer<typeof JobControlMessage>;

/** The channel a job's control messages go out on. */
export function jobControlChannel(jobId: string): string {
  return `job-control:{${jobId}}`;
}
