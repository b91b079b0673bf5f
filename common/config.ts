import { createPublicKey } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isExecutable } from './process-tie.js';
import { loadStageRegistry, StagesConfigError } from './studio-stages.js';

/** Repository root, resolved from this file so scripts work from any working directory. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The project-local folder of provisioned tools (git-ignored): Temporal's binaries, `bpy`. */
export const TOOLS_DIR = process.env.ASSET_FARM_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools');

/** Thrown when the environment does not describe a runnable process; the message names each bad variable. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const temporalEnv = {
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('asset-farm'),
};

const hostPort = z.string().regex(/^[^\s:,/]+:\d{1,5}$/, 'must be host:port');

/** A comma-separated variable as a list of items (blanks around commas and empty entries ignored). */
function commaList<T>(item: z.ZodType<T, string>, { min = 0 }: { min?: number } = {}) {
  return z
    .string()
    .transform((list) =>
      list
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(min, `needs at least ${min} entr${min === 1 ? 'y' : 'ies'}`));
}
const redisEnv = {
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .default('redis://127.0.0.1:6379'),
  /**
   * Redis Sentinels to ask for the current master, as `host:port,host:port,…`. When set, every process
   * connects through them (and follows a failover) instead of to REDIS_URL.
   */
  REDIS_SENTINELS: commaList(hostPort, { min: 1 }).optional(),
  /**
   * Seed nodes of a Redis Cluster, as `host:port,host:port,…`: every process then talks to the cluster
   * (job keys are hash-tagged, so each job's keys and script run in one slot) instead of to REDIS_URL.
   */
  REDIS_CLUSTER_NODES: commaList(hostPort, { min: 1 }).optional(),
  /** The master's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
  REDIS_SENTINEL_MASTER: z.string().min(1).default('asset-farm'),
  /** Password of the Redis servers (with REDIS_SENTINELS or REDIS_CLUSTER_NODES; a REDIS_URL carries its own). */
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** Password of the Sentinels themselves, when they require one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
};
/** One way to reach Redis: a URL, Sentinels or a cluster's nodes. */
function refineRedis(env: { REDIS_SENTINELS?: string[]; REDIS_CLUSTER_NODES?: string[] }, ctx: z.RefinementCtx): void {
  if (env.REDIS_SENTINELS && env.REDIS_CLUSTER_NODES)
    ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'set either REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both' });
}
/** Validates the Redis variables alone (every component schema includes them). */
export const redisSchema = z.object(redisEnv).superRefine(refineRedis);
/** The Redis part of every component's configuration (common/redis.ts turns it into a connection). */
export type RedisEnv = z.infer<typeof redisSchema>;

const storageEnv = {
  DATA_DIR: z.string().min(1).default(path.join(PROJECT_ROOT, 'data')),
  /**
   * Where uploads, checkpoints and outputs live: `local` (DATA_DIR/, every process must see the same
   * folder) or `s3` (a bucket of an S3-compatible server: the API and the HPC machines share no disk).
   */
  STORAGE: z.enum(['local', 's3']).default('local'),
  /** The S3 server's URL (`https://s3.studio.example`, `http://127.0.0.1:7070`); unset: AWS S3 of S3_REGION. */
  S3_ENDPOINT: z.url('must be a URL like https://s3.studio.example').optional(),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name: 3-63 lowercase letters, digits, dots and hyphens')
    .optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** Key prefix inside the bucket (`asset-farm/`), so several stacks or other data can share one bucket. */
  S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)+$/, 'must be folder names each ending with /, e.g. asset-farm/')
    .default(''),
  /** Access key; unset with S3_SECRET_ACCESS_KEY too: the SDK's own chain (instance role, ~/.aws). */
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Path-style URLs (`endpoint/bucket/key`), which most self-hosted servers need; AWS takes virtual-hosted. */
  S3_FORCE_PATH_STYLE: bool.default(false),
};

const storageObject = z.object(storageEnv);
/** The storage variables: what createStorage (storage/create-storage.ts) reads. */
export type StorageEnv = z.infer<typeof storageObject>;
/** Validates the storage variables alone (scripts and tests that only need storage). */
export const storageSchema = storageObject.superRefine(refineStorage);

/** STORAGE=s3 needs a bucket, and credentials come as a pair. */
/** A studio's own pipeline stages (common/studio-stages.ts), read by the API (plans) and the HPC worker (runs them). */
const stagesEnv = {
  /** Path of a YAML or JSON file of studio stages (docs/STAGES.md, "Add a studio stage"); unset: the built-in stages only. */
  STAGES_CONFIG: z.string().min(1).optional(),
};

/** The stages file must load at start: a bad one stops the process naming the file and the field. */
function refineStagesConfig(env: { STAGES_CONFIG?: string | undefined }, ctx: z.RefinementCtx): void {
  try {
    loadStageRegistry(env.STAGES_CONFIG);
  } catch (err) {
    if (!(err instanceof StagesConfigError)) throw err;
    ctx.addIssue({ code: 'custom', path: ['STAGES_CONFIG'], message: err.message });
  }
}

function refineStorage(env: StorageEnv, ctx: z.RefinementCtx): void {
  if (env.STORAGE !== 's3') return;
  if (!env.S3_BUCKET) ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when STORAGE=s3' });
  if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
    const missing = env.S3_ACCESS_KEY_ID ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID';
    ctx.addIssue({
      code: 'custom',
      path: [missing],
      message:
        'is required with its pair: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither to use the SDK’s credential chain',
    });
  }
}

const progressEnv = {
  /** Most progress messages mirrored to Redis per job per second; first, last and stage changes always go. */
  PROGRESS_MAX_RATE: positiveInt.default(10),
  /** How long a job's latest snapshot and replay log live in Redis after its last update. */
  PROGRESS_SNAPSHOT_TTL_SECONDS: positiveInt.default(7 * 24 * 3600),
};

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

const metricsEnv = {
  /** Address the Prometheus endpoint binds; loopback unless a scraper on another host needs it. */
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
};

const logEnv = {
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** What every process of the stack reads: Temporal, Redis, storage, progress, logs and metrics. */
const serviceEnv = { ...temporalEnv, ...redisEnv, ...storageEnv, ...progressEnv, ...logEnv, ...metricsEnv };

export const apiSchema = z
  .object({
    ...serviceEnv,
    ...stagesEnv,
    /**
     * Whether game-ready and mobile jobs end with a turntable render (the preview stage, Blender on the
     * HPC machines, seconds per job): off plans new jobs without it. Jobs already running keep their plan.
     */
    TURNTABLES: bool.default(true),
    API_PORT: port.default(3000),
    /** Address the app listens on: loopback by default; 0.0.0.0 (or an interface's address) exposes it. */
    API_HOST: z.string().min(1).default('127.0.0.1'),
    /** Port of the API's Prometheus /metrics, apart from the app port; 0 turns it off. */
    API_METRICS_PORT: port.default(0),
    NODE_ENV: z.string().optional(),
    /** HS256 secret shared with the identity provider (or the dev login). At least 32 characters. */
    JWT_SECRET: z.string().min(32, 'must be at least 32 characters (openssl rand -hex 32)').optional(),
    /**
     * PEM public key when the studio's identity provider signs with RS256/ES256 instead. A one-line value
     * with literal `\n` between the PEM lines (the form .env files can hold) is read as those lines.
     */
    JWT_PUBLIC_KEY: z
      .string()
      .transform((pem) => pem.replace(/\\n/g, '\n'))
      .optional(),
    JWT_ALGORITHM: z.enum(['HS256', 'RS256', 'ES256']).default('HS256'),
    JWT_ISSUER: z.string().optional(),
    JWT_AUDIENCE: z.string().optional(),
    /** Enables POST /api/auth/dev-login, which issues tokens to anyone. Local stacks only. */
    DEV_LOGIN: bool.default(false),
    /** Largest single upload in bytes. */
    UPLOAD_MAX_BYTES: positiveInt.default(2 * 1024 ** 3),
    /** Uploads (POST /api/jobs) one user may send at once before being rate limited... */
    API_SUBMIT_BURST: positiveInt.default(10),
    /** ...and how many more per minute after that. */
    API_SUBMIT_PER_MINUTE: positiveInt.default(30),
    /** How often the API checks the Temporal status of running jobs that open sockets follow; 0 disables. */
    API_RECONCILE_INTERVAL_MS: z.coerce.number().int().nonnegative().default(5000),
    /** Messages one socket may send per 10 s before it is closed with 4429 (docs/PROTOCOL.md). */
    API_SOCKET_MESSAGES_PER_10S: positiveInt.default(200),
    /** Jobs one socket may follow by id at once. */
    API_SOCKET_MAX_SUBSCRIPTIONS: positiveInt.default(500),
    /** Jobs one user may follow by id at once over all their sockets on one API process. */
    API_USER_MAX_SUBSCRIPTIONS: positiveInt.default(2000),
    /** Sockets one user may hold open on one API process. */
    API_USER_MAX_SOCKETS: positiveInt.default(20),
    /** Socket ownership checks (a Redis read, maybe a Temporal describe) running at once per API process. */
    API_OWNERSHIP_CHECKS: positiveInt.default(16),
    /** Dev-login tokens one client address may get per minute. */
    API_LOGIN_PER_MINUTE: positiveInt.default(10),
    /** Users who may submit `urgent` jobs, besides those whose token has API_URGENT_ROLE in its `roles`. */
    API_URGENT_USERS: commaList(z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'must be user names separated by commas')).default([]),
    /** The token role (`roles` claim) that allows `urgent` jobs. */
    API_URGENT_ROLE: z.string().min(1).default('asset-farm:urgent'),
    /**
     * Shares of the HPC machines, as `key=weight,…` (a user, or `team:<name>` for a token's `team` claim);
     * a key not listed weighs 1. `team:lighting=2` gives the lighting team twice the slots of one artist.
     */
    FAIR_SHARE_WEIGHTS: commaList(
      z.string().regex(/^[A-Za-z0-9._@:-]{1,80}=\d+(\.\d+)?$/, 'must be key=weight pairs, e.g. team:fx=2,alice=0.5'),
    )
      .transform((pairs) => new Map(pairs.map((p) => [p.slice(0, p.lastIndexOf('=')), Number(p.slice(p.lastIndexOf('=') + 1))] as const)))
      .refine((weights) => [...weights.values()].every((w) => w > 0 && w <= 1000), 'weights must be between 0 and 1000')
      .default(new Map<string, number>()),
    /** Longest a token may be valid for, from its iat (or from now): a token without exp is refused. */
    JWT_MAX_LIFETIME_SECONDS: positiveInt.default(24 * 3600),
    /** Most files in one upload (e.g. one .gltf with its .bin and textures). */
    UPLOAD_MAX_FILES: positiveInt.max(256).default(64),
    /**
     * How long an upload may be resumed (POST /api/uploads, the tus protocol) from its creation, and how
     * long a finished one waits for a job to name it; after that a partial upload is deleted.
     */
    UPLOAD_RESUME_SECONDS: positiveInt.max(30 * 24 * 3600).default(24 * 3600),
    /**
     * An upload that sends nothing for this long is cut off (408); one that keeps sending may take as long
     * as it needs up to UPLOAD_MAX_BYTES. Other requests get the same time for their whole request.
     */
    API_REQUEST_IDLE_TIMEOUT_MS: positiveInt.default(60_000),
    /**
     * On SIGTERM, how long /readyz answers 503 before the sockets are closed, so a balancer (deploy/haproxy)
     * stops routing to this process first. 0 (the local default) closes at once.
     */
    API_DRAIN_SECONDS: z.coerce.number().nonnegative().max(300).default(0),
    /**
     * Origins allowed to call the API from another site's page: a comma-separated list of exact origins
     * (`https://tools.studio.example,http://localhost:5173`). None by default: the page is served by the API
     * itself (same origin), so browsers need no CORS header at all.
     */
    API_CORS_ORIGINS: commaList(
      z.url('must be a comma-separated list of origins like https://tools.example').transform((u) => new URL(u).origin),
    ).default([]),
  })
  .superRefine((env, ctx) => {
    refineRedis(env, ctx);
    refineStorage(env, ctx);
    refineStagesConfig(env, ctx);
    const asymmetric = env.JWT_ALGORITHM !== 'HS256';
    if (asymmetric && !env.JWT_PUBLIC_KEY) {
      ctx.addIssue({ code: 'custom', path: ['JWT_PUBLIC_KEY'], message: `is required when JWT_ALGORITHM=${env.JWT_ALGORITHM}` });
    }
    if (asymmetric && env.JWT_PUBLIC_KEY) {
      // Checked here, not at the first token: a key that cannot be read would refuse every token.
      try {
        const key = createPublicKey(env.JWT_PUBLIC_KEY);
        const expected = env.JWT_ALGORITHM === 'RS256' ? 'rsa' : 'ec';
        if (key.asymmetricKeyType !== expected)
          ctx.addIssue({
            code: 'custom',
            path: ['JWT_PUBLIC_KEY'],
            message: `is a ${key.asymmetricKeyType} key; JWT_ALGORITHM=${env.JWT_ALGORITHM} needs an ${expected.toUpperCase()} public key`,
          });
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: ['JWT_PUBLIC_KEY'],
          message: `is not a readable PEM public key (${(err as Error).message}); paste the identity provider's "-----BEGIN PUBLIC KEY-----" block, with real line breaks or \\n between its lines`,
        });
      }
    }
    // The identity provider signs tokens for every application it serves with the same key: only the
    // audience and issuer tell a token meant for asset-farm from one meant for another application.
    for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE'] as const)
      if (asymmetric && !env[name])
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `is required when JWT_ALGORITHM=${env.JWT_ALGORITHM}: tokens the identity provider issued for other applications must be refused`,
        });
    if (!asymmetric && !env.JWT_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'is required (at least 32 characters) when JWT_ALGORITHM=HS256' });
    }
    if (env.DEV_LOGIN && !isLoopbackHost(env.API_HOST)) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEV_LOGIN'],
        message: `must be false when API_HOST=${env.API_HOST} is reachable from other machines: the dev login gives anyone a token. Use a loopback API_HOST, or set DEV_LOGIN=false and configure JWT_SECRET/JWT_PUBLIC_KEY`,
      });
    }
    if (env.DEV_LOGIN && env.NODE_ENV === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['DEV_LOGIN'],
        message: 'must be false when NODE_ENV=production: the dev login gives anyone a token',
      });
    }
    if (asymmetric && env.DEV_LOGIN) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEV_LOGIN'],
        message: 'needs JWT_ALGORITHM=HS256: the dev login signs tokens with JWT_SECRET',
      });
    }
  });
export type ApiConfig = z.infer<typeof apiSchema>;

/**
 * Complexity limits an upload is checked against before any heavy work (inspect reads only the JSON and
 * image headers for them): each refusal is a non-retryable AssetLimit failure naming the limit. The
 * defaults are far above any game asset (DamagedHelmet: 5 accessors, 1 node, 1 primitive, 46k triangles,
 * 2048² textures) and below what holds an HPC slot for minutes (1,000,000 accessors: 3.3 GB, 10 min).
 */
const assetLimitEnv = {
  ASSET_MAX_ACCESSORS: positiveInt.default(100_000),
  ASSET_MAX_NODES: positiveInt.default(100_000),
  ASSET_MAX_PRIMITIVES: positiveInt.default(50_000),
  ASSET_MAX_TRIANGLES: positiveInt.default(20_000_000),
  /** Width × height of the largest texture accepted (default 16384 × 16384). */
  ASSET_MAX_TEXTURE_PIXELS: positiveInt.default(16384 * 16384),
  /** Nesting depth of the glTF JSON (the spec's own structures need under 10; extras rarely more). */
  ASSET_MAX_JSON_DEPTH: positiveInt.default(64),
  /**
   * Depth of the node hierarchy. Rigs and scene graphs are a few dozen levels deep; glTF-Validator and
   * glTF-Transform recurse over it and overflow the stack somewhere past 10,000 (the validator by crashing
   * its thread, which would be retried as a lost worker).
   */
  ASSET_MAX_NODE_DEPTH: positiveInt.default(1000),
};

/** The limits as the stages use them. */
export interface AssetLimits {
  accessors: number;
  nodes: number;
  primitives: number;
  triangles: number;
  texturePixels: number;
  jsonDepth: number;
  nodeDepth: number;
}

/** Limits with every variable unset (tests, tools). */
export const DEFAULT_ASSET_LIMITS: AssetLimits = assetLimitsOf(z.object(assetLimitEnv).parse({}));

/** The AssetLimits a parsed HPC worker config asks for. */
export function assetLimitsOf(config: { [K in keyof typeof assetLimitEnv]: number }): AssetLimits {
  return {
    accessors: config.ASSET_MAX_ACCESSORS,
    nodes: config.ASSET_MAX_NODES,
    primitives: config.ASSET_MAX_PRIMITIVES,
    triangles: config.ASSET_MAX_TRIANGLES,
    texturePixels: config.ASSET_MAX_TEXTURE_PIXELS,
    jsonDepth: config.ASSET_MAX_JSON_DEPTH,
    nodeDepth: config.ASSET_MAX_NODE_DEPTH,
  };
}

/**
 * Blender on an HPC machine (the import and preview stages): a studio's own executable, else the `bpy`
 * module that `npm run provision` installs; and the size of the preview stage's turntable.
 */
const blenderEnv = {
  /** A studio's own Blender executable; unset: the provisioned bpy module (python3.11), if any. */
  BLENDER_PATH: z
    .string()
    .refine((file) => isExecutable(file), 'must be an executable Blender (e.g. /opt/blender/blender); unset it to use the provisioned bpy')
    .optional(),
  /** Frames of a turntable (one turn). */
  PREVIEW_FRAMES: z.coerce.number().int().min(1).max(120).default(16),
  /** Width and height of a turntable in pixels. */
  PREVIEW_SIZE: z.coerce.number().int().min(16).max(2048).default(256),
  /** Cycles samples per pixel. */
  PREVIEW_SAMPLES: z.coerce.number().int().min(1).max(4096).default(8),
  /** Cycles stops a frame after this many seconds whatever its samples, so a render's time is bounded. */
  PREVIEW_FRAME_SECONDS: z.coerce.number().positive().max(600).default(20),
  /** CPU threads one render uses; defaults to the machine's cores. */
  PREVIEW_THREADS: z.coerce.number().int().min(1).max(256).default(os.availableParallelism()),
};

export const hpcWorkerSchema = z
  .object({
    ...assetLimitEnv,
    ...blenderEnv,
    ...serviceEnv,
    ...stagesEnv,
    /** Parallel compute activities on this machine; defaults to its core count. */
    HPC_MAX_CONCURRENT_ACTIVITIES: positiveInt.default(os.availableParallelism()),
    /** Task queue to poll: `hpc` by default, or a per-host queue to pin jobs to one machine. */
    HPC_TASK_QUEUE: z.string().min(1).default('hpc'),
    /** Port for this worker's Prometheus metrics; 0 disables them. */
    METRICS_PORT: port.default(0),
    /**
     * On SIGTERM/Ctrl-C the worker stops taking work and lets running activities finish for this long;
     * whatever is still running then is retried elsewhere from its last heartbeat checkpoint.
     */
    HPC_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().nonnegative().default(30),
    /** A running stage with no progress for this long is flagged stalled (artist's view, metric, AssetStalled). */
    HPC_STALL_AFTER_SECONDS: z.coerce.number().positive().default(120),
    /**
     * Heartbeats per second this worker sends Temporal across all its running stages. Each stage heartbeats
     * once a second until more than this many run at once; then each heartbeats less often, up to every
     * 10 s, so the Temporal server's load stays bounded. A cancel does not wait for a heartbeat: the stop
     * message from Redis ends the stage's work (activities/stop-hints.ts); only without Redis does it
     * ride the next heartbeat's answer.
     */
    HPC_HEARTBEATS_PER_SECOND: positiveInt.default(10),
    /**
     * This machine's own folder where stages work on a job (inputs fetched from storage, intermediates,
     * outputs before they are published). Each worker process uses a folder of its own inside it and
     * empties it after each stage and at start. Default: DATA_DIR/scratch.
     */
    SCRATCH_DIR: z.string().min(1).optional(),
  })
  .superRefine((env, ctx) => {
    refineRedis(env, ctx);
    refineStorage(env, ctx);
    refineStagesConfig(env, ctx);
  });
export type HpcWorkerConfig = z.infer<typeof hpcWorkerSchema>;

export const orchestratorWorkerSchema = z
  .object({
    ...serviceEnv,
    METRICS_PORT: port.default(0),
    /**
     * Where the orchestrator keeps its workflow bundle between starts, keyed by a digest of the sources (a
     * changed file builds a new one; webpack takes seconds of CPU). Default: DATA_DIR/cache.
     */
    WORKFLOW_BUNDLE_CACHE_DIR: z.string().min(1).optional(),
  })
  .superRefine((env, ctx) => {
    refineRedis(env, ctx);
    refineStorage(env, ctx);
  });
export type OrchestratorWorkerConfig = z.infer<typeof orchestratorWorkerSchema>;

/**
 * Parses the environment with a component's schema. On failure throws a ConfigError listing every
 * bad variable with what it expects, so a misconfigured deployment says exactly what to fix.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // Treat empty strings as unset, as docker-compose and .env files produce them for blank values.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const value = env[String(issue.path[0])];
    const shown =
      value === undefined
        ? 'unset'
        : name.includes('SECRET') || name.includes('KEY') || name.includes('PASSWORD')
          ? 'set (hidden)'
          : JSON.stringify(value);
    return `  ${name} (${shown}): ${issue.message}`;
  });
  throw new ConfigError(`Invalid configuration; fix these environment variables (see .env.example):\n${lines.join('\n')}`);
}

/** loadConfig for process entry points: prints the problem and exits 78 (EX_CONFIG) instead of a stack trace. */
export function loadConfigOrExit<S extends z.ZodType>(schema: S, component: string): z.infer<S> {
  try {
    return loadConfig(schema);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`[${component}] ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
}
