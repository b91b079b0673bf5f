import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { parse as parseYaml } from 'yaml';
import { PROJECT_ROOT } from '../../common/config.js';
import { resolveTemporalCli, type ResolvedBinary } from '../provision.js';
import { ServiceProcess } from './service-process.js';
import { freePort, WaitAborted, waitFor } from './wait.js';

const CONFIG_DIR = path.join(PROJECT_ROOT, 'temporal-config');

/** The namespace and search attributes from temporal-config/, which every server the project starts is given. */
export function readTemporalConfig(): {
  namespace: string;
  retentionDays: number;
  searchAttributes: Record<string, string>;
  dynamicConfig: Record<string, unknown>;
} {
  const ns = JSON.parse(readFileSync(path.join(CONFIG_DIR, 'namespace.json'), 'utf8')) as { namespace: string; retentionDays: number };
  const searchAttributes = JSON.parse(readFileSync(path.join(CONFIG_DIR, 'search-attributes.json'), 'utf8')) as Record<string, string>;
  const yaml = parseYaml(readFileSync(path.join(CONFIG_DIR, 'dynamic-config.yaml'), 'utf8')) as Record<
    string,
    { value: unknown; constraints?: unknown }[]
  >;
  // The dev server takes only unconstrained values on its command line.
  const dynamicConfig = Object.fromEntries(
    Object.entries(yaml).flatMap(([key, entries]) => {
      const plain = entries.find((e) => e.constraints === undefined);
      return plain ? [[key, plain.value]] : [];
    }),
  );
  return { namespace: ns.namespace, retentionDays: ns.retentionDays, searchAttributes, dynamicConfig };
}

export interface DevServerOptions {
  /** Frontend (gRPC) port; 0 takes any free one (the address returned says which). */
  port: number;
  /** Web UI port; null runs headless. */
  uiPort: number | null;
  /** SQLite file; null keeps state in memory. */
  dbFile: string | null;
  ip?: string;
  onLine?: (line: string) => void;
  /** Dynamic config values over temporal-config/dynamic-config.yaml (tests compare with a setting off). */
  dynamicConfig?: Record<string, unknown>;
}

export interface RunningDevServer {
  address: string;
  namespace: string;
  uiUrl: string | null;
  binary: ResolvedBinary;
  /** The child process when the project started the CLI itself (null for the SDK download path). */
  process: ServiceProcess | null;
  stop(): Promise<void>;
}

/** Starts the Temporal dev server with temporal-config/ applied, and resolves once its namespace answers. */
export async function startDevServer(options: DevServerOptions): Promise<RunningDevServer> {
  const config = readTemporalConfig();
  const binary = resolveTemporalCli();
  const ip = options.ip ?? '127.0.0.1';
  // Port 0: any free port, picked again if another process takes it before the server binds it.
  let address = `${ip}:${options.port}`;
  if (options.dbFile) mkdirSync(path.dirname(options.dbFile), { recursive: true, mode: 0o700 });
  const extraArgs = [
    ...Object.entries({ ...config.dynamicConfig, ...options.dynamicConfig }).flatMap(([k, v]) => [
      '--dynamic-config-value',
      `${k}=${JSON.stringify(v)}`,
    ]),
    // The dev server logs every dropped poll at warn during shutdown; errors are what matter here.
    '--log-level',
    'error',
  ];

  if (binary.path === null) {
    // Last resort for users with internet: let the SDK fetch and run the CLI.
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download' },
        ip,
        port: options.port || Number((address = `${ip}:${await freePort()}`).split(':').at(-1)),
        namespace: config.namespace,
        ...(options.dbFile ? { dbFilename: options.dbFile } : {}),
        ...(options.uiPort !== null ? { ui: true, uiPort: options.uiPort } : { ui: false }),
        searchAttributes: Object.keys(config.searchAttributes).map((k) => defineSearchAttributeKey(k, SearchAttributeType.KEYWORD)),
        extraArgs,
      },
    });
    return {
      address,
      namespace: config.namespace,
      uiUrl: options.uiPort !== null ? `http://localhost:${options.uiPort}` : null,
      binary,
      process: null,
      stop: () => env.teardown(),
    };
  }

  const baseArgs = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--namespace',
    config.namespace,
    ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
    ...(options.uiPort !== null ? ['--ui-port', String(options.uiPort), '--ui-disable-news-fetch'] : ['--headless']),
    ...Object.entries(config.searchAttributes).flatMap(([k, type]) => ['--search-attribute', `${k}=${type}`]),
    ...extraArgs,
  ];
  let proc: ServiceProcess | null = null;
  // A port picked free a moment ago can be taken by the time the server binds it (other tests pick ports
  // too): a server that exits during start-up is started again on fresh HTTP and metrics ports.
  for (let attempt = 1; ; attempt++) {
    const [httpPort, metricsPort] = [await freePort(), await freePort()];
    const port = options.port === 0 ? await freePort() : options.port;
    address = `${ip}:${port}`;
    const args = [...baseArgs, '--port', String(port), '--http-port', String(httpPort), '--metrics-port', String(metricsPort)];
    const started = new ServiceProcess('temporal', binary.path, args, { onLine: options.onLine });
    try {
      await waitFor(
        async () => {
          if (started.child.exitCode !== null) {
            throw new WaitAborted(`temporal exited with ${started.child.exitCode}:\n${[...started.head, '…', ...started.tail].join('\n')}`);
          }
          const connection = await Connection.connect({ address, connectTimeout: 1000 });
          try {
            await connection.workflowService.describeNamespace({ namespace: config.namespace });
            return true;
          } finally {
            await connection.close();
          }
        },
        { timeoutMs: 60_000, what: `the Temporal dev server on ${address}`, intervalMs: 250 },
      );
      proc = started;
      break;
    } catch (err) {
      await started.stop();
      if (!(err instanceof WaitAborted) || attempt >= 3) throw err;
      options.onLine?.(`temporal exited during start-up (attempt ${attempt}); starting it again`);
    }
  }
  const running = proc;
  const stop = () => running.stop();
  return {
    address,
    namespace: config.namespace,
    uiUrl: options.uiPort !== null ? `http://localhost:${options.uiPort}` : null,
    binary,
    process: running,
    stop,
  };
}

/**
 * Resolves once a worker process (by pid) polls the task queue, which is the moment it can take work.
 * Readiness comes from the server, not from log lines, so it holds at any LOG_LEVEL.
 */
export async function waitForPoller(options: {
  address: string;
  namespace: string;
  taskQueue: string;
  kind: 'workflow' | 'activity';
  pid: number;
  timeoutMs: number;
  isAlive?: () => boolean;
}): Promise<void> {
  const connection = await Connection.connect({ address: options.address });
  try {
    await waitFor(
      async () => {
        if (options.isAlive && !options.isAlive()) throw new Error(`worker ${options.pid} exited`);
        const res = await connection.workflowService.describeTaskQueue({
          namespace: options.namespace,
          taskQueue: { name: options.taskQueue },
          // 1 = TASK_QUEUE_TYPE_WORKFLOW, 2 = TASK_QUEUE_TYPE_ACTIVITY
          taskQueueType: options.kind === 'workflow' ? 1 : 2,
        });
        return (res.pollers ?? []).some((p) => p.identity?.startsWith(`${options.pid}@`));
      },
      { timeoutMs: options.timeoutMs, what: `worker ${options.pid} to poll ${options.taskQueue}`, intervalMs: 200 },
    );
  } finally {
    await connection.close();
  }
}
