import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { resolveRedisServer } from '../../scripts/provision.js';
import { startRedisServer, type RunningRedis } from '../../scripts/lib/redis-server.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { freePort, waitFor } from '../../scripts/lib/wait.js';

/** The master name the test Sentinels monitor (the config default, REDIS_SENTINEL_MASTER). */
export const SENTINEL_MASTER = 'asset-farm';

export interface RedisHa {
  /** The Redis servers, by port: the first started as master, the second as its replica. */
  servers: Map<number, RunningRedis>;
  sentinels: { port: number; process: ServiceProcess }[];
  /** REDIS_SENTINELS for the stack's processes. */
  sentinelList: string;
  /** The port of the master the Sentinels currently name. */
  masterPort(): Promise<number>;
  /** Starts a stopped server again on its port and folder; the Sentinels make it a replica of the current master. */
  restart(port: number): Promise<RunningRedis>;
  stop(): Promise<void>;
}

async function sentinelMasterPort(port: number): Promise<number | null> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    const addr = (await client.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string] | null;
    return addr ? Number(addr[1]) : null;
  } catch {
    return null;
  } finally {
    client.disconnect();
  }
}

/**
 * Redis as a studio runs it for high availability, on loopback: a master, one replica and three Sentinels
 * (quorum 2) that promote the replica within a few seconds of the master going down.
 */
export async function startRedisHa(dir: string): Promise<RedisHa> {
  const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const servers = new Map<number, RunningRedis>();
  const serverArgs = (port: number) => ({ port, dir: path.join(dir, `redis-${port}`) });
  servers.set(masterPort!, await startRedisServer(serverArgs(masterPort!)));
  servers.set(
    replicaPort!,
    await startRedisServer({ ...serverArgs(replicaPort!), extraArgs: ['--replicaof', '127.0.0.1', String(masterPort)] }),
  );
  const binary = resolveRedisServer().path!;
  const sentinels = sentinelPorts.map((port) => {
    const folder = path.join(dir, `sentinel-${port}`);
    mkdirSync(folder, { recursive: true });
    const conf = path.join(folder, 'sentinel.conf');
    // Sentinels rewrite their own file (the replicas and peers they learn), so each has its own.
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${folder}`,
        `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
        `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
        '',
      ].join('\n'),
    );
    return { port, process: new ServiceProcess(`sentinel-${port}`, binary, [conf, '--sentinel']) };
  });
  const ha: RedisHa = {
    servers,
    sentinels,
    sentinelList: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    async masterPort() {
      for (const { port } of sentinels) {
        const master = await sentinelMasterPort(port);
        if (master) return master;
      }
      throw new Error('no Sentinel names a master');
    },
    async restart(port) {
      const server = await startRedisServer(serverArgs(port));
      servers.set(port, server);
      return server;
    },
    async stop() {
      await Promise.all([...sentinels.map((s) => s.process.stop()), ...[...servers.values()].map((s) => s.stop())]);
    },
  };
  // Ready when every Sentinel knows the master and has seen the replica and the other two Sentinels.
  await waitFor(
    async () => {
      const views = await Promise.all(
        sentinels.map(async ({ port }) => {
          const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          client.on('error', () => {});
          try {
            await client.connect();
            const flat = (await client.call('SENTINEL', 'master', SENTINEL_MASTER)) as string[];
            const info = Object.fromEntries(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : [])));
            return Number(info['num-slaves']) >= 1 && Number(info['num-other-sentinels']) >= 2;
          } catch {
            return false;
          } finally {
            client.disconnect();
          }
        }),
      );
      return views.every(Boolean);
    },
    { timeoutMs: 30_000, what: 'three Sentinels that see the master, its replica and each other', intervalMs: 100 },
  );
  return ha;
}

export interface RedisCluster {
  servers: RunningRedis[];
  /** REDIS_CLUSTER_NODES for the stack's processes. */
  nodeList: string;
  stop(): Promise<void>;
}

/** A Redis Cluster of three masters on loopback (no replicas: the test is about slots, not failover). */
export async function startRedisCluster(dir: string): Promise<RedisCluster> {
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  const servers = await Promise.all(
    ports.map((port) =>
      startRedisServer({
        port,
        dir: path.join(dir, `cluster-${port}`),
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
      }),
    ),
  );
  const cluster: RedisCluster = {
    servers,
    nodeList: ports.map((p) => `127.0.0.1:${p}`).join(','),
    stop: async () => void (await Promise.all(servers.map((s) => s.stop()))),
  };
  const cli = path.join(path.dirname(resolveRedisServer().path!), 'redis-cli');
  const create = new ServiceProcess('redis-cli', cli, [
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ]);
  const { code } = await create.exited;
  if (code !== 0) {
    await cluster.stop();
    throw new Error(`redis-cli --cluster create failed (${code}):\n${create.tail.join('\n')}`);
  }
  await waitFor(
    async () => {
      const client = new Redis({
        port: ports[0],
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok');
      } catch {
        return false;
      } finally {
        client.disconnect();
      }
    },
    { timeoutMs: 30_000, what: 'the Redis Cluster to report cluster_state:ok' },
  );
  return cluster;
}
