import path from 'node:path';
import { ConfigError, PROJECT_ROOT } from '../common/config.js';
import { portFromEnv } from './lib/ports.js';
import { startDevServer } from './lib/temporal-server.js';

/**
 * `npm run temporal`: the Temporal dev server with temporal-config/ applied, in the foreground until
 * Ctrl-C. It has no authentication, so it and every port it opens listen on 127.0.0.1 only.
 */
let ports: { grpc: number; ui: number };
try {
  ports = { grpc: portFromEnv('TEMPORAL_PORT', 7233), ui: portFromEnv('TEMPORAL_UI_PORT', 8233) };
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[temporal] ${err.message}`);
  process.exit(78);
}
const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
const server = await startDevServer({
  port: ports.grpc,
  uiPort: ports.ui,
  ip: '127.0.0.1',
  dbFile: path.join(dataDir, 'temporal', 'temporal.db'),
  onLine: (l) => console.log(l),
});
console.log(`${server.binary.describe}\nTemporal ready at ${server.address}, UI ${server.uiUrl}. Ctrl-C to stop.`);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());
