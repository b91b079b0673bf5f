import type { Logger } from 'pino';
import { serveMetrics } from '../common/metrics-server.js';
import { freePort } from '../common/net.js';
import { installTemporalRuntime } from './runtime.js';
import { createWorkerMetrics, type WorkerMetrics } from './worker-metrics.js';

/**
 * What every worker process sets up before it connects: the Temporal runtime logging through pino, and
 * when metricsPort is set, /metrics with the process's own metrics followed by the SDK's (exported on a
 * loopback port of its own).
 */
export async function setUpWorkerObservability(
  component: 'worker-hpc' | 'worker-orchestrator',
  endpoint: { port: number; host: string },
  log: Logger,
): Promise<{ metrics: WorkerMetrics; close(): Promise<void> }> {
  const { port: metricsPort, host } = endpoint;
  const metrics = createWorkerMetrics(component);
  const sdkMetricsPort = metricsPort ? await freePort() : null;
  installTemporalRuntime(log, sdkMetricsPort ? `127.0.0.1:${sdkMetricsPort}` : undefined);
  const server = metricsPort
    ? await serveMetrics({
        port: metricsPort,
        host,
        registry: metrics.registry,
        sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics`,
      })
    : null;
  if (server) log.info({ port: metricsPort, host }, 'Prometheus metrics at /metrics');
  return {
    metrics,
    close: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}
