import { priorityName, type HpcQueueShare } from '../common/hpc-queue.js';
import { readProgressTs } from '../common/redis-scripts/published-message.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of an API process (asset_farm_ prefix, component="api"), on their own registry. */
export function createApiMetrics(sources: {
  stats: () => { sockets: number; channels: number; patterns: number };
  /** The HPC queues' waiting lines (common/hpc-queue.ts), read when scraped. */
  queueShares?: () => Promise<{ queue: string; shares: HpcQueueShare[] }[]>;
}) {
  const registry = new Registry();
  // One read of the lines serves both queue gauges of a scrape.
  let lines: Promise<{ queue: string; shares: HpcQueueShare[] }[]> | null = null;
  const readLines = () => {
    lines ??= (sources.queueShares?.() ?? Promise.resolve([])).finally(() => setTimeout(() => (lines = null), 1000).unref());
    return lines;
  };
  const shareLabels = (queue: string, share: HpcQueueShare) => ({
    queue,
    priority: priorityName(share.priorityKey),
    share_key: share.fairnessKey,
  });
  registry.setDefaultLabels({ component: 'api' });
  collectDefaultMetrics({ register: registry, prefix: 'asset_farm_' });
  const metrics = {
    registry,
    jobsStarted: new Counter({
      name: 'asset_farm_jobs_started_total',
      help: 'Jobs started through POST /api/jobs (uploads and retries), by preset',
      labelNames: ['preset'] as const,
      registers: [registry],
    }),
    activeSockets: new Gauge({
      name: 'asset_farm_api_sockets',
      help: 'Open progress sockets on this API process',
      registers: [registry],
      collect() {
        this.set(sources.stats().sockets);
      },
    }),
    subscriptions: new Gauge({
      name: 'asset_farm_api_redis_subscriptions',
      help: 'Redis channels (one job) and patterns (all of an owner) this API process is subscribed to',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        const stats = sources.stats();
        this.set({ kind: 'channel' }, stats.channels);
        this.set({ kind: 'pattern' }, stats.patterns);
      },
    }),
    hpcQueueDepth: new Gauge({
      name: 'asset_farm_hpc_queue_depth',
      help: 'Compute stages waiting for an HPC slot, by queue, priority and fairness key (the owner, or team:<name>)',
      labelNames: ['queue', 'priority', 'share_key'] as const,
      registers: [registry],
      async collect() {
        const read = await readLines();
        this.reset();
        for (const { queue, shares } of read) for (const share of shares) this.set(shareLabels(queue, share), share.waiting);
      },
    }),
    hpcQueueOldestWait: new Gauge({
      name: 'asset_farm_hpc_queue_oldest_wait_seconds',
      help: 'How long the longest-waiting stage of each queue, priority and fairness key has waited for an HPC slot so far',
      labelNames: ['queue', 'priority', 'share_key'] as const,
      registers: [registry],
      async collect() {
        const read = await readLines();
        this.reset();
        for (const { queue, shares } of read) for (const share of shares) this.set(shareLabels(queue, share), share.oldestWaitMs / 1000);
      },
    }),
    socketLatency: new Histogram({
      name: 'asset_farm_progress_socket_latency_seconds',
      help: 'From a progress report on the HPC worker (its ts) to this API relaying it to sockets; includes clock skew between hosts',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    messagesRelayed: new Counter({
      name: 'asset_farm_api_messages_relayed_total',
      help: 'Job messages (progress and events) from Redis handed to a socket, counted once per socket',
      registers: [registry],
    }),
    progressCoalesced: new Counter({
      name: 'asset_farm_api_progress_coalesced_total',
      help: 'Progress messages not sent to a slow socket because a newer one superseded them',
      registers: [registry],
    }),
    socketRefusals: new Counter({
      name: 'asset_farm_api_socket_refusals_total',
      help: 'Socket requests refused by a bound: messages (rate, socket closed 4429), sockets (per-user cap, 4430), subscriptions (caps), busy (ownership-check queue full)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    ownershipChecks: new Counter({
      name: 'asset_farm_api_ownership_checks_total',
      help: 'Ownership checks of socket subscribes that ran (each at most a Redis read and a Temporal describe)',
      registers: [registry],
    }),
    /** Observes the heartbeat-to-socket latency of one live message as published (events are not counted). */
    observeRelay(raw: string, now = Date.now()): void {
      const ts = readProgressTs(raw);
      if (ts !== undefined) metrics.socketLatency.observe(Math.max(0, now - ts) / 1000);
    },
  };
  return metrics;
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
