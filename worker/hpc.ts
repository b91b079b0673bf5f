import { Worker } from '@temporalio/worker';
import { createHpcActivities } from '../activities/index.js';
import { HeartbeatPacer } from '../activities/heartbeat-pacer.js';
import { HEARTBEAT_INTERVAL_MS } from '../activities/progress-reporter.js';
import { StopHints } from '../activities/stop-hints.js';
import { assetLimitsOf, hpcWorkerSchema, loadConfigOrExit } from '../common/config.js';
import { JobLog } from '../common/job-log.js';
import { createLogger } from '../common/logger.js';
import { createRedis } from '../common/redis.js';
import { LocalStorage } from '../storage/local-storage.js';
import { connectToTemporal } from './connection.js';
import { activityMetricsInterceptor } from './worker-metrics.js';
import { setUpWorkerObservability } from './observability.js';
import { jobLogAttributes } from './job-log-attributes.js';

/**
 * The HPC machine's worker: polls only the compute queue and runs the heavy activities, at most
 * HPC_MAX_CONCURRENT_ACTIVITIES at a time. Ctrl-C / SIGTERM lets running activities finish their
 * grace period; anything cut short is retried from its heartbeat checkpoint by another worker.
 */
const config = loadConfigOrExit(hpcWorkerSchema, 'worker:hpc');
const log = createLogger('worker-hpc', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'publisher', log);
const jobLog = new JobLog(redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });
// Its own connection: a subscribed Redis connection can do nothing else.
const subscriber = createRedis(config.REDIS_URL, 'subscriber', log);
let dropped = 0;

const metrics = await setUpWorkerObservability('worker-hpc', config.METRICS_PORT, log);
const connection = await connectToTemporal(config.TEMPORAL_ADDRESS, log);
const worker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: config.HPC_TASK_QUEUE,
  interceptors: { activity: [activityMetricsInterceptor(metrics), jobLogAttributes] },
  activities: createHpcActivities({
    jobLog,
    storage: new LocalStorage(config.DATA_DIR),
    progressMaxRate: config.PROGRESS_MAX_RATE,
    assetLimits: assetLimitsOf(config),
    onDrop: () => {
      dropped++;
      metrics.progressDrops.inc();
    },
    stallAfterMs: config.HPC_STALL_AFTER_SECONDS * 1000,
    onStallChange: (delta) => {
      metrics.stalledStages.inc(delta);
      if (delta > 0) metrics.stalls.inc();
    },
    onPublished: (_seq, producedAt) => metrics.publishLag.observe(Math.max(0, Date.now() - producedAt) / 1000),
    heartbeatPacer: new HeartbeatPacer({ maxPerSecond: config.HPC_HEARTBEATS_PER_SECOND, minIntervalMs: HEARTBEAT_INTERVAL_MS }),
    stopHints: new StopHints(subscriber, log),
  }),
  maxConcurrentActivityTaskExecutions: config.HPC_MAX_CONCURRENT_ACTIVITIES,
  // Temporal's cancel reaches a running stage only with the answer to a heartbeat (a stop message from
  // Redis usually ends the work sooner; the stage still waits for this to report itself cancelled). The
  // default throttle (80 % of the 30 s heartbeat timeout) would delay it by up to 24 s.
  maxHeartbeatThrottleInterval: HEARTBEAT_INTERVAL_MS,
  shutdownGraceTime: config.HPC_SHUTDOWN_GRACE_SECONDS * 1000,
});
log.info(
  { taskQueue: config.HPC_TASK_QUEUE, maxConcurrentActivities: config.HPC_MAX_CONCURRENT_ACTIVITIES, namespace: config.TEMPORAL_NAMESPACE },
  'HPC worker ready',
);
try {
  await worker.run();
} finally {
  log.info({ droppedProgressUpdates: dropped }, 'HPC worker stopped');
  await connection.close();
  redis.disconnect();
  subscriber.disconnect();
}
