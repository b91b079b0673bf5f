import { Client, Connection } from '@temporalio/client';
import { apiSchema, loadConfigOrExit } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { serveMetrics } from '../common/metrics-server.js';
import { createRedis, redisConnection } from '../common/redis.js';
import { loadStageRegistry } from '../common/studio-stages.js';
import { plannedStages } from '../common/stages.js';
import { createStorage } from '../storage/create-storage.js';
import { createApiServer } from './app.js';

const config = loadConfigOrExit(apiSchema, 'api');
const log = createLogger('api', config.LOG_LEVEL);
if (config.DEV_LOGIN) log.warn('DEV_LOGIN is on: anyone can get a token. Use it only on a local stack.');

const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS }).catch((err: Error) => {
  log.fatal(`Could not reach Temporal at ${config.TEMPORAL_ADDRESS}: ${err.message}. Start it (npm run temporal) or fix TEMPORAL_ADDRESS.`);
  process.exit(1);
});
const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
const redis = createRedis(redisConnection(config), 'reader', log);
const subscriber = createRedis(redisConnection(config), 'subscriber', log);
// Checked at start with the rest of the config; a studio's stages join the built-in ones in new jobs' plans.
const stages = plannedStages(loadStageRegistry(config.STAGES_CONFIG), { turntables: config.TURNTABLES });
if (!config.TURNTABLES) log.info('TURNTABLES is off: new jobs are planned without the turntable render');
if (config.STAGES_CONFIG) log.info({ file: config.STAGES_CONFIG, stages: stages.map((s) => s.name) }, 'Studio stages loaded');
const api = createApiServer({ config, temporal, redis, subscriber, storage: createStorage(config), log, stages });

// API_HOST is loopback unless set: exposing the app is a decision (BIND_HOST under npm start, API_HOST in compose).
api.server.listen(config.API_PORT, config.API_HOST, () => {
  log.info({ port: config.API_PORT, host: config.API_HOST }, `API listening on http://${config.API_HOST}:${config.API_PORT}`);
});
// Unauthenticated, so on a port of its own (METRICS_HOST, loopback by default), never on the app's.
const metricsServer = config.API_METRICS_PORT
  ? await serveMetrics({ port: config.API_METRICS_PORT, host: config.METRICS_HOST, registry: api.metrics.registry })
  : null;
if (metricsServer) log.info({ port: config.API_METRICS_PORT, host: config.METRICS_HOST }, 'Prometheus metrics at /metrics');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'API shutting down');
  if (config.API_DRAIN_SECONDS > 0) {
    // Behind a balancer: fail the readiness check, give the balancer time to notice, then close the sockets
    // (1012: clients reconnect, and the balancer sends them to another API process).
    api.drain();
    log.info({ seconds: config.API_DRAIN_SECONDS }, 'draining: /readyz answers 503 before the sockets are closed');
    await new Promise((resolve) => setTimeout(resolve, config.API_DRAIN_SECONDS * 1000));
  }
  await api.close();
  metricsServer?.close();
  redis.disconnect();
  subscriber.disconnect();
  await connection.close();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
