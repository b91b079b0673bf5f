import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { hpcWorkerSchema, loadConfigOrExit } from '../../common/config.js';
import { HeartbeatPacer } from '../../activities/heartbeat-pacer.js';
import { HEARTBEAT_INTERVAL_MS } from '../../activities/progress-reporter.js';
import { JobLog } from '../../common/job-log.js';
import { createLogger } from '../../common/logger.js';
import { createRedis } from '../../common/redis.js';
import { connectToTemporal } from '../../worker/connection.js';
import { installTemporalRuntime } from '../../worker/runtime.js';
import { BENCH_HPC_QUEUE, BENCH_ORCHESTRATOR_QUEUE } from './bench-queues.js';
import { createSyntheticActivities } from './synthetic-activity.js';

/**
 * The benchmark's worker process, wired as worker/hpc.ts is (same config schema, publisher Redis
 * connection, JobLog and maxConcurrentActivityTaskExecutions), with the synthetic activity in place of
 * the compute ones. The benchmark workflow runs here too, on its own queue: it is idle while jobs report.
 */
const config = loadConfigOrExit(hpcWorkerSchema, 'bench-worker');
const log = createLogger('bench-worker', config.LOG_LEVEL);
const publisher = createRedis(config.REDIS_URL, 'publisher', log);
const reader = createRedis(config.REDIS_URL, 'reader', log);
const jobLog = new JobLog(publisher, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });

installTemporalRuntime(log);
const connection = await connectToTemporal(config.TEMPORAL_ADDRESS, log);
const activityWorker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: BENCH_HPC_QUEUE,
  activities: createSyntheticActivities({
    jobLog,
    reader,
    maxRate: config.PROGRESS_MAX_RATE,
    heartbeatPacer: new HeartbeatPacer({ maxPerSecond: config.HPC_HEARTBEATS_PER_SECOND, minIntervalMs: HEARTBEAT_INTERVAL_MS }),
  }),
  maxConcurrentActivityTaskExecutions: config.HPC_MAX_CONCURRENT_ACTIVITIES,
  // As worker/hpc.ts: every running job's heartbeat reaches Temporal once a second, and that load counts.
  maxHeartbeatThrottleInterval: HEARTBEAT_INTERVAL_MS,
  shutdownGraceTime: '2 seconds',
});
const workflowWorker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: BENCH_ORCHESTRATOR_QUEUE,
  workflowsPath: fileURLToPath(new URL('./bench-workflows.ts', import.meta.url)),
  maxConcurrentWorkflowTaskExecutions: 100,
  shutdownGraceTime: '2 seconds',
});
log.info({ maxConcurrentActivities: config.HPC_MAX_CONCURRENT_ACTIVITIES }, 'bench worker ready');
try {
  await Promise.all([activityWorker.run(), workflowWorker.run()]);
} finally {
  await connection.close();
  publisher.disconnect();
  reader.disconnect();
}
