import { proxyActivities } from '@temporalio/workflow';
import type { SyntheticActivities } from './synthetic-activity.js';
import { BENCH_HPC_QUEUE, type SyntheticJobInput, type SyntheticJobResult } from './bench-queues.js';

/** The same activity options as the product's compute activities, minus retries: a failed run is reported, not redone. */
const compute = proxyActivities<SyntheticActivities>({
  taskQueue: BENCH_HPC_QUEUE,
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
});

/** One benchmark job: a workflow running one synthetic compute activity on the HPC-style worker. */
export async function benchProgressJob(input: SyntheticJobInput): Promise<SyntheticJobResult> {
  return compute.reportSyntheticProgress(input);
}
