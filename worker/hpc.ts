import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { createHpcActivities, createJobEventActivities } from '../activities/index.js';
import { HeartbeatPacer } from '../activities/heartbeat-pacer.js';
import { HEARTBEAT_INTERVAL_MS } from '../activities/progress-reporter.js';
import { StopHints } from '../activities/stop-hints.js';
import { findBlender } from '../activities/tools/blender.js';
import { WorkerScratch } from '../activities/job-scratch.js';
import { assetLimitsOf, hpcWorkerSchema, loadConfigOrExit } from '../common/config.js';
import { loadStageRegistry } from '../common/studio-stages.js';
import { JobLog } from '../common/job-log.js';
import { createLogger } from '../common/logger.js';
import { HpcQueueBook, priorityName } from '../common/hpc-queue.js';
import { createRedis, redisConnection } from '../common/redis.js';
import { createStorage } from '../storage/create-storage.js';
import { connectToTemporal } from './connection.js';
import { activityMetricsInterceptor } from './worker-metrics.js';
import { setUpWorkerObservability } from './observability.js';
import { jobLogAttributes } from './job-log-attributes.js';
import { HpcQueuePlaces } from './hpc-queue-places.js';
import { stageHandoverInterceptor } from './stage-handover.js';
import { WorkerLifecycle } from './process-lifecycle.js';

/**
 * The HPC machine's worker: polls only the compute queue and runs the heavy activities, at most
 * HPC_MAX_CONCURRENT_ACTIVITIES at a time. Ctrl-C / SIGTERM stops polling and lets running activities
 * finish for HPC_SHUTDOWN_GRACE_SECONDS (then cancels them; each is retried from its heartbeat checkpoint
 * by another worker), closes Temporal, Redis and /metrics, and exits (worker/process-lifecycle.ts).
 */
const config = loadConfigOrExit(hpcWorkerSchema, 'worker:hpc');
const log = createLogger('worker-hpc', config.LOG_LEVEL);
const lifecycle = new WorkerLifecycle(log, { graceMs: config.HPC_SHUTDOWN_GRACE_SECONDS * 1000 });
const redis = createRedis(redisConnection(config), 'publisher', log);
const jobLog = new JobLog(redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });
// Its own connection: a subscribed Redis connection can do nothing else.
const subscriber = createRedis(redisConnection(config), 'subscriber', log);
let dropped = 0;

const observability = await setUpWorkerObservability('worker-hpc', { port: config.METRICS_PORT, host: config.METRICS_HOST }, log);
const metrics = observability.metrics;
const book = new HpcQueueBook(redis);
const places = new HpcQueuePlaces({
  book,
  queue: config.HPC_TASK_QUEUE,
  slots: config.HPC_MAX_CONCURRENT_ACTIVITIES,
  log,
  onWaitEnded: ({ waitedMs, priorityKey, fairnessKey }) =>
    metrics.hpcQueueWait.observe(
      { queue: config.HPC_TASK_QUEUE, priority: priorityName(priorityKey), share_key: fairnessKey },
      waitedMs / 1000,
    ),
});
// Before the Redis publisher closes: the line stops counting this worker's slots.
lifecycle.onClose('HPC queue line', () => places.close());
// The publisher has no offline queue: a register sent before it connects would be lost (and warned about).
if (redis.status === 'ready') await places.register();
else redis.once('ready', () => void places.register());
const connection = await connectToTemporal(config.TEMPORAL_ADDRESS, log);
lifecycle.onClose('Temporal connection', () => connection.close());
lifecycle.closeRedisAtExit('Redis publisher', redis);
lifecycle.closeRedisAtExit('Redis subscriber', subscriber);
lifecycle.onClose('metrics endpoint', () => observability.close());
lifecycle.onClose('progress drop count', async () =>
  log.info({ droppedProgressUpdates: dropped }, 'Progress updates not mirrored to Redis'),
);
// Found, never installed, here: `npm run provision` (or npm start) installs; a machine without Blender still runs glTF jobs.
const blender = findBlender({ ...process.env, BLENDER_PATH: config.BLENDER_PATH });
log.info(
  { blender: blender?.describe ?? null },
  blender ? 'Blender for imports and turntables' : 'No Blender: FBX, OBJ and .blend jobs fail, turntables are skipped',
);
const storage = createStorage(config);
// Its own scratch folder: what a killed worker left there is removed now.
const scratch = await WorkerScratch.open(config.SCRATCH_DIR ?? path.join(config.DATA_DIR, 'scratch'), storage);
log.info({ storage: config.STORAGE, scratch: scratch.dir }, 'Storage and scratch folder');
const worker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: config.HPC_TASK_QUEUE,
  interceptors: {
    activity: [
      activityMetricsInterceptor(metrics),
      // A stage's end and the next one's start, published here as the stage ends (common/stage-handover.ts).
      stageHandoverInterceptor(
        createJobEventActivities({
          jobLog,
          hpcQueue: book,
          onDrop: () => metrics.progressDrops.inc(),
        }).publishJobEvents,
      ),
      jobLogAttributes,
      places.interceptor(),
    ],
  },
  activities: createHpcActivities({
    jobLog,
    storage,
    scratch,
    // The built-in stages and the studio's (STAGES_CONFIG, checked at start with the rest of the config).
    stages: loadStageRegistry(config.STAGES_CONFIG),
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
    blender,
    turntable: {
      frames: config.PREVIEW_FRAMES,
      size: config.PREVIEW_SIZE,
      samples: config.PREVIEW_SAMPLES,
      secondsPerFrame: config.PREVIEW_FRAME_SECONDS,
      threads: config.PREVIEW_THREADS,
    },
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
await lifecycle.run(worker);
