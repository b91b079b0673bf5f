import { randomUUID } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import { JobLog } from '../../common/job-log.js';
import type { ProcessAssetInput } from '../../common/jobs.js';
import { type PipelineSettings, resolveSettings } from '../../common/pipeline.js';
import { createRedis } from '../../common/redis.js';
import { LocalStorage } from '../../storage/local-storage.js';
import { startTestRedis } from './redis.js';
import { SHARED_ASSETS } from './upload.js';
import { createHpcActivities, type HpcActivities } from '../../activities/hpc-activities.js';
import { WorkerScratch } from '../../activities/job-scratch.js';
import type { StageDescriptor } from '../../common/stages.js';

export { SHARED_ASSETS };

/**
 * What the stage tests share: a real LocalStorage in a temporary folder, real Redis behind the progress
 * mirror, and the activities run in MockActivityEnvironment as the job's workflow would run them.
 */
export interface PipelineFixture {
  dataDir: string;
  storage: LocalStorage;
  /** The real Redis behind the progress mirror, and the JobLog over it. */
  redisUrl: string;
  jobLog: JobLog;
  activities: HpcActivities;
  /** The worker's scratch (its folder is emptied after every stage). */
  scratch: WorkerScratch;
  /** Where LocalStorage keeps a job's checkpoints (to watch what a stage stored and when). */
  checkpointDir(jobId: string): string;
  /** The bytes of a job's published output, or null when it has none of that name. */
  outputBytes(jobId: string, name: string): Promise<Buffer | null>;
  /** Stores bytes as one of a job's checkpoints, as an earlier stage (on any machine) would have. */
  putCheckpoint(jobId: string, name: string, bytes: Buffer | string): Promise<void>;
  /** Stores files as an upload would and returns the workflow input naming them. */
  upload(files: string[], options?: Partial<ProcessAssetInput['options']>): Promise<ProcessAssetInput>;
  /** An activity environment for one job (its workflow id), optionally resuming from heartbeat details. */
  envFor(jobId: string, heartbeatDetails?: unknown): MockActivityEnvironment;
  stop(): Promise<void>;
}

/** `stages`: the registry the activities run (default the built-in stages). */
export async function startPipelineFixture(options: { stages?: readonly StageDescriptor[] } = {}): Promise<PipelineFixture> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-compute-'));
  const redisServer = await startTestRedis();
  const redis: Redis = createRedis(redisServer.url, 'publisher');
  const storage = new LocalStorage(dataDir);
  const jobLog = new JobLog(redis, { ttlSeconds: 600 });
  const scratch = await WorkerScratch.open(path.join(dataDir, 'scratch'), storage);
  const activities = createHpcActivities({
    jobLog,
    storage,
    scratch,
    progressMaxRate: 20,
    heartbeatIntervalMs: 200,
    ...(options.stages ? { stages: options.stages } : {}),
  });
  return {
    dataDir,
    storage,
    redisUrl: redisServer.url,
    jobLog,
    activities,
    scratch,
    checkpointDir: (jobId) => path.join(dataDir, 'jobs', jobId, 'checkpoints'),
    async outputBytes(jobId, name) {
      const object = await storage.openOutput(jobId, name);
      if (!object) return null;
      const chunks: Buffer[] = [];
      for await (const chunk of object.stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    async putCheckpoint(jobId, name, bytes) {
      const file = path.join(dataDir, `checkpoint-${randomUUID()}`);
      await fs.writeFile(file, bytes);
      await storage.saveCheckpoint(jobId, name, file);
      await fs.rm(file);
    },
    async upload(files, options = {}) {
      const stored = await Promise.all(
        files.map(async (file) => ({ name: path.basename(file), ...(await storage.putUpload(createReadStream(file), 1 << 30)) })),
      );
      const main = stored.find((f) => /\.(glb|gltf)$/i.test(f.name));
      return { owner: 'alice', assetName: main?.name ?? stored[0]!.name, files: stored, options: { preset: 'game-ready', ...options } };
    },
    envFor(jobId, heartbeatDetails) {
      return new MockActivityEnvironment(
        { workflowExecution: { workflowId: jobId, runId: 'run-1' }, ...(heartbeatDetails !== undefined ? { heartbeatDetails } : {}) },
        // Failing on purpose is most of what these tests do; the SDK's per-failure warning is noise here.
        { logger: new DefaultLogger('ERROR') },
      );
    },
    async stop() {
      redis.disconnect();
      await redisServer.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The workflow's request for a stage: the input and its resolved settings. */
export function requestFor(input: ProcessAssetInput, settings?: PipelineSettings) {
  return { input, settings: settings ?? resolveSettings(input.options) };
}

/** env.run with the activity's result type kept (the SDK's signature cannot infer it). */
export function runIn<A extends unknown[], R>(env: MockActivityEnvironment, activity: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run<A, R, (...args: A) => Promise<R>>(activity, ...args);
}
