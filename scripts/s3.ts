import path from 'node:path';
import { ConfigError, loadConfig, PROJECT_ROOT, storageSchema } from '../common/config.js';
import { portFromEnv } from './lib/ports.js';
import { startVersitygw } from './lib/versitygw-server.js';

/**
 * `npm run s3`: a local S3-compatible server (versitygw) on 127.0.0.1:S3_PORT (7070) with its objects in
 * DATA_DIR/s3 and the bucket S3_BUCKET created, in the foreground until Ctrl-C. It serves the key pair in
 * S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY, and prints the variables that point every other process at it.
 */
let port: number;
let keys: { bucket: string; accessKey: string; secretKey: string };
try {
  port = portFromEnv('S3_PORT', 7070);
  const config = loadConfig(storageSchema, { S3_BUCKET: 'asset-farm', ...process.env, STORAGE: 's3' });
  if (!config.S3_ACCESS_KEY_ID || !config.S3_SECRET_ACCESS_KEY)
    throw new ConfigError('Invalid configuration: set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (openssl rand -hex 20 each)');
  keys = { bucket: config.S3_BUCKET!, accessKey: config.S3_ACCESS_KEY_ID, secretKey: config.S3_SECRET_ACCESS_KEY };
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[s3] ${err.message}`);
  process.exit(78);
}
const dataDir = path.resolve(process.env.DATA_DIR ?? path.join(PROJECT_ROOT, 'data'));
const server = await startVersitygw({ port, dir: path.join(dataDir, 's3'), ...keys, onLine: (l) => console.log(l) });
console.log(
  `S3 ready at ${server.endpoint}, bucket ${server.bucket}. Give every process: STORAGE=s3 S3_ENDPOINT=${server.endpoint} ` +
    `S3_BUCKET=${server.bucket} S3_FORCE_PATH_STYLE=true and the same S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY. Ctrl-C to stop.`,
);
const stop = async () => {
  await server.stop();
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());
