import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { API_NODE_FLAGS } from '../../api/node-flags.js';
import { apiSchema, hpcWorkerSchema, orchestratorWorkerSchema, PROJECT_ROOT, redisSchema, storageSchema } from '../../common/config.js';
import { resolveTemporalCli } from '../../scripts/provision.js';
import { readTemporalConfig } from '../../scripts/lib/temporal-server.js';

/**
 * No Docker engine runs here, so docker-compose.yml and the Dockerfile are kept honest by reading them
 * against the code: what they start, mount and set must exist and be what the code reads.
 */
interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown> | string[];
  volumes?: string[];
  ports?: string[];
}

const compose = parse(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const dockerfile = readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
const dockerfileEnv = Object.fromEntries(
  [...dockerfile.matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((pair) => pair.split('=') as [string, string])),
);
const services = compose.services;
const API_SERVICES = ['api-1', 'api-2'];
const HPC_SERVICES = ['worker-hpc-1', 'worker-hpc-2'];
const APP_SERVICES = [...API_SERVICES, 'worker-orchestrator', ...HPC_SERVICES, 's3-setup'];
const SENTINELS = ['redis-sentinel-1', 'redis-sentinel-2', 'redis-sentinel-3'];
const defaultSentinelMaster = redisSchema.parse({}).REDIS_SENTINEL_MASTER;

describe('docker-compose.yml', () => {
  it('defines every service it depends on and every named volume it mounts', () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) expect(services, `${name} depends on ${dep}`).toHaveProperty(dep);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(path.join(PROJECT_ROOT, source)), `${name} mounts ${source}`).toBe(true);
        else expect(compose.volumes, `${name} mounts volume ${source}`).toHaveProperty(source);
      }
    }
  });

  it('runs two of everything: a balancer, two APIs, Redis with a replica and three Sentinels, two HPC workers', () => {
    expect(services.temporal?.environment?.DB).toBe('postgres12');
    expect(services.temporal?.environment?.POSTGRES_SEEDS).toBe('postgresql');
    expect(services.postgresql?.image).toMatch(/^postgres:/);
    expect(services['temporal-ui']?.image).toMatch(/^temporalio\/ui:/);
    for (const name of APP_SERVICES) expect(services[name]?.build, name).toBe('.');
    expect(services.balancer?.image).toMatch(/^haproxy:/);
    expect(services.balancer?.volumes).toContain('./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    expect(services['redis-master']?.image).toMatch(/^redis:/);
    expect(services['redis-replica']?.command?.join(' ')).toContain('--replicaof redis-master 6379');
    for (const name of SENTINELS) {
      const script = services[name]!.entrypoint!.join(' ');
      expect(script, name).toContain(`sentinel monitor ${defaultSentinelMaster} redis-master 6379 2`);
      expect(script, name).toContain('--sentinel');
    }
  });

  it('balances over exactly the API services, on the port each listens on', () => {
    const env = services.balancer!.environment!;
    const cfg = readFileSync(path.join(PROJECT_ROOT, 'deploy/haproxy/haproxy.cfg'), 'utf8');
    const backends = [...cfg.matchAll(/^\s*server \S+ "\$\{(\w+)\}"/gm)].map((m) => env[m[1]!]);
    expect(backends).toEqual(API_SERVICES.map((name) => `${name}:${services[name]!.environment!.API_PORT}`));
    expect(cfg).toMatch(/option httpchk GET \/readyz/);
    expect(env.ASSET_FARM_LISTEN).toBe(':3000');
    for (const name of API_SERVICES) expect(Number(services[name]!.environment!.API_DRAIN_SECONDS), name).toBeGreaterThan(2);
  });

  it('starts each app service with node itself, running what its npm script runs', () => {
    // Not `npm run`: npm forwards a stop's SIGTERM to its shell only, which dies without passing it on.
    const scripts = Object.values(pkg.scripts);
    // The API's node flags (api/node-flags.ts) before the rest; no flags for the others.
    const flagsOf = (script: string) => (script === 'api/main.ts' ? API_NODE_FLAGS : []);
    for (const name of APP_SERVICES) {
      const command = services[name]!.command!;
      const script = command.at(-1)!;
      expect(command, name).toEqual(['node', ...flagsOf(script), '--import', 'tsx', script]);
      expect(existsSync(path.join(PROJECT_ROOT, script)), `${name} runs ${script}`).toBe(true);
      expect(scripts, `an npm script runs ${command.join(' ')}`).toContain(command.join(' '));
    }
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    const cmdArgs = JSON.parse(cmd![1]!) as string[];
    expect(cmdArgs).toEqual(['node', ...API_NODE_FLAGS, '--import', 'tsx', 'api/main.ts']);
    expect(scripts).toContain(cmdArgs.join(' '));
    expect(dockerfile).toMatch(/RUN npm run typecheck/);
    expect(pkg.scripts).toHaveProperty('typecheck');
  });

  it('copies into the image every folder the entry points import', () => {
    for (const folder of ['common', 'storage', 'workflows', 'activities', 'worker', 'api', 'web', 'temporal-config']) {
      expect(dockerfile).toContain(`COPY ${folder} ./${folder}`);
      expect(existsSync(path.join(PROJECT_ROOT, folder))).toBe(true);
    }
  });

  it('sets only variables the code reads, and every one each component requires', () => {
    const schemas = {
      'api-1': apiSchema,
      'api-2': apiSchema,
      'worker-orchestrator': orchestratorWorkerSchema,
      'worker-hpc-1': hpcWorkerSchema,
      'worker-hpc-2': hpcWorkerSchema,
    };
    for (const [name, schema] of Object.entries(schemas)) {
      const env = services[name]!.environment!;
      const shape = 'shape' in schema ? schema.shape : (schema as unknown as { in: { shape: object } }).in.shape;
      for (const key of Object.keys(env)) expect(Object.keys(shape), `${name} sets ${key}`).toContain(key);
      // With placeholders filled in (a `:-` default as compose would use it), the component's own
      // validation accepts the environment, as the image runs it (NODE_ENV=production).
      const filled = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [
          k,
          String(v).replace(
            /\$\{[^}:]+(?::-([^}]*)|[^}]*)\}/g,
            (_m, fallback?: string) => fallback ?? (k === 'JWT_SECRET' ? 'x'.repeat(40) : '1'),
          ),
        ]),
      );
      expect(() => schema.parse({ ...filled, NODE_ENV: dockerfileEnv.NODE_ENV }), name).not.toThrow();
    }
  });

  it('publishes the app and nothing else: Temporal, its UI, Redis, Postgres and metrics stay internal', () => {
    const published = Object.entries(services)
      .filter(([, service]) => (service.ports ?? []).length > 0)
      .map(([name]) => name);
    expect(published).toEqual(['balancer']);
    expect(services.balancer?.ports).toEqual(['3000:3000']);
    // The API must listen on the container's interface for the balancer to reach it...
    expect(services['api-1']?.environment?.API_HOST).toBe('0.0.0.0');
    // ...which is exactly where the dev login is refused, whatever DEV_LOGIN says.
    const devLoginOn = { JWT_SECRET: 'x'.repeat(40), API_HOST: services['api-1']?.environment?.API_HOST, DEV_LOGIN: 'true' };
    expect(() => apiSchema.parse(devLoginOn)).toThrow(/DEV_LOGIN/);
  });

  it('runs the Temporal server version the dev server runs, its schema tools of the same version, with fairness on', () => {
    // Fair share needs a server whose matcher has fairness (1.28 had none): the tests prove it on the
    // provisioned CLI's dev server, so production runs that same server version.
    const cli = resolveTemporalCli({ allowInstall: false });
    if (cli.path === null) throw new Error(`no Temporal CLI to compare with (${cli.describe}); run npm run provision`);
    const devServer = /Server (\d+\.\d+\.\d+)/.exec(execFileSync(cli.path, ['--version'], { encoding: 'utf8' }))?.[1];
    expect(devServer).toBeDefined();
    expect(services.temporal?.image).toBe(`temporalio/server:${devServer}`);
    for (const name of ['temporal-schema', 'temporal-setup'])
      expect(services[name]?.image, name).toBe(`temporalio/admin-tools:${devServer}`);
    expect(services.temporal?.depends_on).toMatchObject({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(services['temporal-schema']?.entrypoint).toEqual(['/bin/sh', '/temporal-config/setup-schema.sh']);
    // The server reads the same dynamic config the dev servers are started with, fairness included.
    const mount = services.temporal!.volumes!.find((v) => v.startsWith('./temporal-config/dynamic-config.yaml:'))!;
    expect(mount.split(':')[1]).toBe(`/etc/temporal/${services.temporal!.environment!.DYNAMIC_CONFIG_FILE_PATH}`);
    expect(readTemporalConfig().dynamicConfig).toMatchObject({ 'matching.enableFairness': true });
  });

  it('requires a Postgres password instead of defaulting one', () => {
    const required = /^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/;
    expect(services.postgresql?.environment?.POSTGRES_PASSWORD).toMatch(required);
    expect(services.temporal?.environment?.POSTGRES_PWD).toMatch(required);
    expect(services['temporal-schema']?.environment?.SQL_PASSWORD).toMatch(required);
    expect(readFileSync(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')).not.toMatch(/POSTGRES_PASSWORD:-/);
  });

  it('keeps secrets, local state and installed tools out of the build context', () => {
    const ignored = readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['.env', 'data/', 'node_modules/', '.tools/', '.git/']) expect(ignored).toContain(entry);
    // Everything the Dockerfile copies by name is still in the context.
    for (const [, source] of dockerfile.matchAll(/^COPY (?!--from)(\S+) /gm)) {
      for (const file of source!.split(' ')) expect(ignored.some((entry) => entry.replace(/\/$/, '') === file)).toBe(false);
    }
  });

  it('points the apps at the compose services', () => {
    for (const name of APP_SERVICES) {
      const env = services[name]!.environment!;
      expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
      // Through the Sentinels, never to one Redis: a failover must not need a config change.
      expect(env.REDIS_URL).toBeUndefined();
      expect(env.REDIS_SENTINELS?.split(',')).toEqual(SENTINELS.map((s) => `${s}:26379`));
      expect(env.REDIS_SENTINEL_MASTER).toBe(defaultSentinelMaster);
      expect(env.TEMPORAL_NAMESPACE).toBe(readTemporalConfig().namespace);
    }
  });

  it('registers the namespace and every search attribute the code uses', () => {
    const script = readFileSync(path.join(PROJECT_ROOT, 'temporal-config/setup-namespace.sh'), 'utf8');
    expect(script).toContain('search-attributes.json');
    expect(services['temporal-setup']?.entrypoint).toEqual(['/bin/sh', '/temporal-config/setup-namespace.sh']);
    const source = readFileSync(path.join(PROJECT_ROOT, 'common/search-attributes.ts'), 'utf8');
    const used = [...source.matchAll(/defineSearchAttributeKey\('(\w+)'/g)].map((m) => m[1]);
    expect(Object.keys(readTemporalConfig().searchAttributes).sort()).toEqual(used.sort());
  });

  it('shares no volume between the APIs and the HPC workers: each worker has only its own scratch', () => {
    const volumesOf = (name: string) => (services[name]!.volumes ?? []).map((v) => v.split(':')[0]!);
    const apiVolumes = new Set(API_SERVICES.flatMap(volumesOf));
    for (const worker of HPC_SERVICES) {
      expect(
        volumesOf(worker).filter((v) => apiVolumes.has(v)),
        worker,
      ).toEqual([]);
      // Its volume is its alone: no other service mounts it.
      for (const volume of volumesOf(worker))
        for (const [other] of Object.entries(services).filter(([name]) => name !== worker))
          expect(volumesOf(other), `${other} mounts ${worker}'s ${volume}`).not.toContain(volume);
      const env = services[worker]!.environment!;
      expect(env.SCRATCH_DIR?.startsWith(services[worker]!.volumes![0]!.split(':')[1]!), worker).toBe(true);
    }
    // The orchestrator needs no files at all.
    expect(volumesOf('worker-orchestrator')).toEqual([]);
  });

  it('keeps artists’ files in the s3 service (not MinIO), which every app process reaches with validated S3 settings', () => {
    const s3 = services.s3!;
    expect(s3.image).toMatch(/^versity\/versitygw:v\d/);
    expect(Object.values(services).some((service) => /minio/i.test(service.image ?? ''))).toBe(false);
    const port = /:(\d+)$/.exec(s3.command![s3.command!.indexOf('--port') + 1]!)![1];
    for (const name of [...APP_SERVICES]) {
      const env = services[name]!.environment!;
      const config = storageSchema.parse({ ...env, S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's' });
      expect(config.STORAGE, name).toBe('s3');
      expect(config.S3_ENDPOINT, name).toBe(`http://s3:${port}`);
      expect(config.S3_FORCE_PATH_STYLE, name).toBe(true);
      // Keys are required from the operator, never defaulted; the server gets the same pair.
      expect(env.S3_SECRET_ACCESS_KEY, name).toMatch(/^\$\{S3_SECRET_ACCESS_KEY:\?[^}]+\}$/);
    }
    expect(s3.environment?.ROOT_SECRET_KEY).toMatch(/^\$\{S3_SECRET_ACCESS_KEY:\?[^}]+\}$/);
    expect(s3.environment?.ROOT_ACCESS_KEY).toMatch(/^\$\{S3_ACCESS_KEY_ID:\?[^}]+\}$/);
    expect(s3.ports ?? []).toEqual([]);
    // The bucket exists before an API or a worker starts.
    for (const name of [...API_SERVICES, ...HPC_SERVICES])
      expect((services[name]!.depends_on as Record<string, { condition: string }>)['s3-setup'], name).toEqual({
        condition: 'service_completed_successfully',
      });
  });
});
