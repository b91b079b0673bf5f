import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { createJobEventActivities } from '../activities/index.js';
import { loadConfigOrExit, orchestratorWorkerSchema } from '../common/config.js';
import { JobLog } from '../common/job-log.js';
import { createLogger } from '../common/logger.js';
import { createRedis } from '../common/redis.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import { connectToTemporal } from './connection.js';
import { installTemporalRuntime } from './runtime.js';
import { activityMetricsInterceptor, createWorkerMetrics } from './worker-metrics.js';
import { serveMetrics } from '../common/metrics-server.js';
import { freePort } from '../common/net.js';

/** Runs the workflows and the light activities they need (event publishing) on the orchestrator queue. */
const config = loadConfigOrExit(orchestratorWorkerSchema, 'worker:orchestrator');
const log = createLogger('worker-orchestrator', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'publisher', log);
const jobLog = new JobLog(redis, { ttlSeconds: config.PROGRESS_SNAPSHOT_TTL_SECONDS });

const metrics = createWorkerMetrics('worker-orchestrator');
const sdkMetricsPort = config.METRICS_PORT ? await freePort() : null;
installTemporalRuntime(log, sdkMetricsPort ? `127.0.0.1:${sdkMetricsPort}` : undefined);
if (config.METRICS_PORT) {
  await serveMetrics({
    port: config.METRICS_PORT,
    registry: metrics.registry,
    sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics`,
  });
  log.info({ port: config.METRICS_PORT }, 'Prometheus metrics at /metrics');
}
const connection = await connectToTemporal(config.TEMPORAL_ADDRESS, log);
const worker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: ORCHESTRATOR_TASK_QUEUE,
  interceptors: { activity: [activityMetricsInterceptor(metrics)] },
  workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
  activities: createJobEventActivities({
    jobLog,
    onDrop: () => metrics.progressDrops.inc(),
    onFinished: (outcome, preset) => metrics.jobsFinished.inc({ outcome, preset }),
  }),
});
log.info({ taskQueue: ORCHESTRATOR_TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE }, 'Orchestrator worker ready');
try {
  await worker.run();
} finally {
  await connection.close();
  redis.disconnect();
}
