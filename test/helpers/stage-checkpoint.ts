import { Client, Connection } from '@temporalio/client';
import { waitFor } from '../../scripts/lib/wait.js';

/**
 * Waits until the Temporal server holds a heartbeat of the job's running textures stage whose checkpoint
 * lists at least one finished texture but not all `total`, and resolves with how many it lists. That
 * checkpoint (not the Redis mirror, which runs ahead of the throttled heartbeats) is what a new worker
 * resumes from, so a test kills a worker only once it is there.
 */
export async function texturesCheckpointed(
  stack: { temporalAddress: string; namespace: string },
  jobId: string,
  { total = 5, timeoutMs = 120_000 }: { total?: number; timeoutMs?: number } = {},
): Promise<number> {
  const connection = await Connection.connect({ address: stack.temporalAddress });
  try {
    const handle = new Client({ connection, namespace: stack.namespace }).workflow.getHandle(jobId);
    return await waitFor(
      async () => {
        const pending = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'processTextures');
        const payload = pending?.heartbeatDetails?.payloads?.[0]?.data;
        if (!payload) return undefined;
        const details = JSON.parse(Buffer.from(payload).toString('utf8')) as { checkpoint?: { done?: number[] } };
        const done = details.checkpoint?.done?.length ?? 0;
        return done >= 1 && done < total ? done : undefined;
      },
      { timeoutMs, what: 'a heartbeat checkpoint with a finished texture', intervalMs: 50 },
    );
  } finally {
    await connection.close();
  }
}
