import { mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { resolveRedisServer } from '../provision.js';
import { ServiceProcess } from './service-process.js';
import { WaitAborted, waitFor } from './wait.js';

export interface RunningRedis {
  url: string;
  port: number;
  process: ServiceProcess;
  stop(): Promise<void>;
}

/**
 * Starts a local redis-server on 127.0.0.1:port with its data in `dir`. The append-only file keeps
 * job sequence numbers across a Redis restart, so clients' lastSeq stays meaningful.
 */
export async function startRedisServer(options: {
  port: number;
  dir: string;
  onLine?: (line: string) => void;
  persist?: boolean;
  /** More redis-server options, e.g. `['--replicaof', '127.0.0.1', '6379']` for a replica. */
  extraArgs?: string[];
}): Promise<RunningRedis> {
  const binary = resolveRedisServer();
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const args = [
    '--port',
    String(options.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    options.dir,
    '--save',
    '',
    '--appendonly',
    options.persist === false ? 'no' : 'yes',
    '--appendfsync',
    'everysec',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    ...(options.extraArgs ?? []),
  ];
  const proc = new ServiceProcess('redis', binary.path!, args, { onLine: options.onLine });
  const url = `redis://127.0.0.1:${options.port}`;
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null)
          throw new WaitAborted(`redis-server exited with ${proc.child.exitCode}:\n${proc.tail.join('\n')}`);
        const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        client.on('error', () => {});
        try {
          await client.connect();
          return (await client.ping()) === 'PONG';
        } finally {
          client.disconnect();
        }
      },
      { timeoutMs: 20_000, what: `redis-server on port ${options.port}` },
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { url, port: options.port, process: proc, stop: () => proc.stop() };
}
