import http from 'node:http';
import type { Registry } from 'prom-client';

/**
 * Serves GET /metrics for a worker process: its prom-client registry followed by the Temporal SDK's own
 * metrics, which the SDK exports on an internal loopback port (`sdkMetricsUrl`) and are passed through
 * here so Prometheus scrapes one endpoint per process.
 */
export function serveMetrics(options: { port: number; host?: string; registry: Registry; sdkMetricsUrl?: string }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void renderMetrics(options.registry, options.sdkMetricsUrl).then(
      (body) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(`metrics unavailable: ${String(err)}`),
    );
  });
  // Unauthenticated: loopback unless the caller names an address a scraper must reach (METRICS_HOST).
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve(server));
  });
}

/** The registry's metrics, then the SDK's (if reachable; a scrape never fails because of them). */
export async function renderMetrics(registry: Registry, sdkMetricsUrl?: string): Promise<string> {
  const own = await registry.metrics();
  if (!sdkMetricsUrl) return own;
  try {
    const res = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2000) });
    return res.ok ? `${own}\n${await res.text()}` : own;
  } catch {
    return own;
  }
}
