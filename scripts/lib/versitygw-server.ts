import { mkdirSync } from 'node:fs';
import { loadConfig, storageSchema } from '../../common/config.js';
import { ensureBucket } from '../../storage/ensure-bucket.js';
import { requireVersitygw } from '../provision.js';
import { ServiceProcess } from './service-process.js';
import { WaitAborted, waitFor } from './wait.js';

export interface RunningS3Server {
  /** The STORAGE=s3 variables that reach the bucket (pass them to every component's environment). */
  env: Record<string, string>;
  endpoint: string;
  bucket: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

/**
 * Starts versitygw (an S3-compatible server) on 127.0.0.1:port serving the folder `dir` (each bucket a
 * sub-folder, each object a file), creates the bucket, and resolves once it answers S3 requests.
 */
export async function startVersitygw(options: {
  port: number;
  dir: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  onLine?: (line: string) => void;
}): Promise<RunningS3Server> {
  const binary = requireVersitygw();
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const endpoint = `http://127.0.0.1:${options.port}`;
  // The keys go through the environment, not the command line, so `ps` does not show them.
  const proc = new ServiceProcess('s3', binary.path!, ['--port', `127.0.0.1:${options.port}`, 'posix', options.dir], {
    env: { ...process.env, ROOT_ACCESS_KEY: options.accessKey, ROOT_SECRET_KEY: options.secretKey },
    onLine: options.onLine,
  });
  const env = {
    STORAGE: 's3',
    S3_ENDPOINT: endpoint,
    S3_BUCKET: options.bucket,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: options.accessKey,
    S3_SECRET_ACCESS_KEY: options.secretKey,
    S3_FORCE_PATH_STYLE: 'true',
  };
  const config = loadConfig(storageSchema, env);
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new WaitAborted(`versitygw exited with ${proc.child.exitCode}:\n${proc.tail.join('\n')}`);
        // Created on the first start; a restart on the same folder finds it.
        await ensureBucket(config);
        return true;
      },
      { timeoutMs: 20_000, what: `versitygw on port ${options.port}` },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { env, endpoint, bucket: options.bucket, process: proc, stop: () => proc.stop() };
}
