import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { createJobEventActivities, jobInputActivities } from '../activities/index.js';
import { loadConfigOrExit, orchestratorWorkerSchema } from '../common/config.js';
import { HpcQueueBook } from '../common/hpc-queue.js';
import { JobLog } from '../common/job-log.js';
import { createLogger } from '../common/logger.js';
import { createRedis, redisConnection } from '../common/redis.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { connectToTemporal } from './connection.js';
import { activityMetricsInterceptor } from './worker-metrics.js';
import { setUpWorkerObservability } from './observability.js';
import { jobLogAttributes } from './job-log-attributes.js';
import { WorkerLifecycle } from './process-lifecycle.js';
import { workflowBundle } from './workflow-bundle.js';

/** Runs the workflows and the light activities they need (event publishing, the input check) on the orchestrator queue. */
const config = loadConfigOrExit(orchestratorWorkerSchema, 'worker:orchestrator');
const log = createLogger('worker-orchestrator', config.LOG_LEVEL);
// Workflow tasks are short; the SDK's default shutdownGraceTime (0) applies, the deadline only bounds a hang.
const lifecycle = new WorkerLifecycle(log, { graceMs: 0 });
const redis = createRedis(redisConnection(config), 'publisher', log);
const jobLog = new JobLog(redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });

const observability = await setUpWorkerObservability('worker-orchestrator', { port: config.METRICS_PORT, host: config.METRICS_HOST }, log);
const metrics = observability.metrics;
const connection = await connectToTemporal(config.TEMPORAL_ADDRESS, log);
lifecycle.onClose('Temporal connection', () => connection.close());
lifecycle.closeRedisAtExit('Redis publisher', redis);
lifecycle.onClose('metrics endpoint', () => observability.close());
const worker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: ORCHESTRATOR_TASK_QUEUE,
  interceptors: { activity: [activityMetricsInterceptor(metrics), jobLogAttributes] },
  workflowBundle: await workflowBundle(
    fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
    config.WORKFLOW_BUNDLE_CACHE_DIR ?? path.join(config.DATA_DIR, 'cache'),
    log,
  ),
  activities: {
    ...createJobEventActivities({
      jobLog,
      onDrop: () => metrics.progressDrops.inc(),
      onFinished: (outcome, preset) => metrics.jobsFinished.inc({ outcome, preset }),
      hpcQueue: new HpcQueueBook(redis),
    }),
    ...jobInputActivities,
  },
});
log.info({ taskQueue: ORCHESTRATOR_TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE }, 'Orchestrator worker ready');
await lifecycle.run(worker);
