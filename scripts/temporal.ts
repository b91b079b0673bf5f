import path from 'node:path';
import { PROJECT_ROOT } from '../common/config.js';
import { startDevServer } from './lib/temporal-server.js';

/** `npm run temporal`: the Temporal dev server with temporal-config/ applied, in the foreground until Ctrl-C. */
const port = Number(process.env.TEMPORAL_PORT ?? 7233);
const uiPort = Number(process.env.TEMPORAL_UI_PORT ?? 8233);
const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
const server = await startDevServer({
  port,
  uiPort,
  ip: '0.0.0.0',
  dbFile: path.join(dataDir, 'temporal', 'temporal.db'),
  onLine: (l) => console.log(l),
});
console.log(`${server.binary.describe}\nTemporal ready at ${server.address}, UI ${server.uiUrl}. Ctrl-C to stop.`);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
