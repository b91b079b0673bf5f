import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets for compute stages: 10 ms to 1 h. */
const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

/** Prometheus metrics of a worker process (asset_farm_ prefix), registered on their own registry. */
export function createWorkerMetrics(component: 'worker-hpc' | 'worker-orchestrator') {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: 'asset_farm_' });
  return {
    registry,
    activityDuration: new Histogram({
      name: 'asset_farm_activity_duration_seconds',
      help: 'Duration of one activity attempt (a pipeline stage on the HPC worker), by activity and outcome',
      labelNames: ['activity', 'outcome'] as const,
      buckets: STAGE_BUCKETS,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'asset_farm_activity_queue_wait_seconds',
      help: 'Time an activity attempt waited on its task queue before a worker started it',
      labelNames: ['activity'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [registry],
    }),
    hpcQueueWait: new Histogram({
      name: 'asset_farm_hpc_queue_wait_seconds',
      help: 'Time a compute stage waited in its HPC queue line (common/hpc-queue.ts) before this worker started it, by priority and fairness key',
      labelNames: ['queue', 'priority', 'share_key'] as const,
      buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    progressDrops: new Counter({
      name: 'asset_farm_progress_mirror_drops_total',
      help: 'Progress updates or job events that could not be mirrored to Redis (Redis down or slow)',
      registers: [registry],
    }),
    publishLag: new Histogram({
      name: 'asset_farm_progress_publish_lag_seconds',
      help: 'From a progress report call to Redis acknowledging its publish',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    stalledStages: new Gauge({
      name: 'asset_farm_stalled_stages',
      help: 'Stages running on this worker that have made no progress for HPC_STALL_AFTER_SECONDS',
      registers: [registry],
    }),
    stalls: new Counter({
      name: 'asset_farm_stage_stalls_total',
      help: 'Times a running stage was flagged stalled',
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'asset_farm_jobs_finished_total',
      help: 'Jobs that reached a terminal state, by outcome (completed, failed, cancelled) and preset',
      labelNames: ['outcome', 'preset'] as const,
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/** Activity interceptor that times every attempt and its queue wait, whatever the activity. */
export function activityMetricsInterceptor(metrics: WorkerMetrics): ActivityInterceptorsFactory {
  return () => ({
    inbound: {
      async execute(input, next) {
        const info = Context.current().info;
        const scheduled = info.currentAttemptScheduledTimestampMs;
        if (scheduled) metrics.queueWait.observe({ activity: info.activityType }, Math.max(0, Date.now() - scheduled) / 1000);
        const end = metrics.activityDuration.startTimer({ activity: info.activityType });
        try {
          const result = await next(input);
          end({ outcome: 'completed' });
          return result;
        } catch (err) {
          end({ outcome: err instanceof CancelledFailure || Context.current().cancellationSignal.aborted ? 'cancelled' : 'failed' });
          throw err;
        }
      },
    },
  });
}
