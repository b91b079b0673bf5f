import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import path from 'node:path';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { pino } from 'pino';
import { z } from 'zod';
import { jobInputActivities, type JobEventActivities } from '../../activities/index.js';
import type { PipelineActivities } from '../../common/pipeline.js';
import type { JobEventFields } from '../../common/progress.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { HPC_TASK_QUEUE, ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.js';
import { stageHandoverInterceptor } from '../../worker/stage-handover.js';
import { workflowBundle } from '../../worker/workflow-bundle.js';

/** The test run's workflow bundle cache, shared by the test files and the stacks' orchestrators (WORKFLOW_BUNDLE_CACHE_DIR). */
export const TEST_BUNDLE_CACHE_DIR = path.join(PROJECT_ROOT, 'node_modules', '.cache', 'asset-farm', 'workflow-bundles');
const silentLog = pino({ level: 'silent' });

/**
 * The workflows bundled as the orchestrator bundles them (worker/workflow-bundle.ts), from the test run's
 * cache when the sources are unchanged: webpack takes seconds of CPU, once per run instead of once per file.
 */
export async function bundleWorkflows(): Promise<WorkflowBundle> {
  return workflowBundle(fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)), TEST_BUNDLE_CACHE_DIR, silentLog);
}

/**
 * Runs both workers as production does (workflows and event publishing on the orchestrator queue,
 * compute on the HPC queue) with the given compute activities, while `drive` runs; events the
 * workflows publish are collected in order instead of going to Redis.
 */
export async function withWorkers<T>(
  env: TestWorkflowEnvironment,
  workflowBundle: WorkflowBundle,
  pipeline: PipelineActivities,
  drive: (events: JobEventFields[]) => Promise<T>,
  /** The HPC worker's queue: a host's own, for jobs pinned with options.hpcQueue. */
  hpcTaskQueue: string = HPC_TASK_QUEUE,
  /** Decides which events "Redis" takes (default: all): false makes that publish answer null, as in an outage. */
  redisTakes: (fields: JobEventFields) => boolean = () => true,
  /**
   * Whether the HPC worker publishes stage handovers as production's does (worker/stage-handover.ts,
   * through the same "Redis" as the workflow's events); false is a worker from before handovers.
   */
  { handover = true }: { handover?: boolean } = {},
): Promise<T> {
  const events: JobEventFields[] = [];
  const light: JobEventActivities = {
    async publishJobEvent(fields) {
      events.push(fields);
      return events.length;
    },
    // A run started by a reset announces itself first (conditionally in Redis; always here, so a test
    // sees a run that wrongly takes itself for a reset).
    async publishJobEvents(batch, restarted) {
      if (restarted) events.push(restarted);
      // As the real activity answers: a position per event taken, null for the first one not taken, then stop.
      const seqs: (number | null)[] = [];
      for (const fields of batch) {
        if (!redisTakes(fields)) {
          seqs.push(null);
          break;
        }
        events.push(fields);
        seqs.push(events.length);
      }
      return seqs;
    },
  };
  const orchestrator = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: ORCHESTRATOR_TASK_QUEUE,
    workflowBundle,
    activities: { ...light, ...jobInputActivities },
  });
  const hpc = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: hpcTaskQueue,
    activities: pipeline,
    interceptors: { activity: handover ? [stageHandoverInterceptor(light.publishJobEvents)] : [] },
    // A cancel reaches an activity in a heartbeat's answer; by default heartbeats are sent at most
    // every 0.8 × heartbeatTimeout (24 s), which would make a cancel test wait that long.
    maxHeartbeatThrottleInterval: '200 milliseconds',
  });
  return orchestrator.runUntil(hpc.runUntil(() => drive(events)));
}

/** A history file as saved for the replay test. */
export const SavedHistory = z.object({ workflowId: z.string().min(1), history: z.object({ events: z.array(z.unknown()).min(1) }) });

/** Where the histories the replay test replays are kept (workflows/replay.test.ts). */
export const HISTORIES_DIR = fileURLToPath(new URL('../../workflows/histories/', import.meta.url));

/**
 * Saves the workflow's history as workflows/histories/<name>.json when the run was started with
 * UPDATE_HISTORIES=1 (`npm run histories:update`); otherwise does nothing, so tests never rewrite them
 * by accident.
 */
export async function saveHistoryIfRequested(name: string, handle: WorkflowHandle): Promise<void> {
  if (process.env.UPDATE_HISTORIES !== '1') return;
  // The workflow id is kept with the history: replay compares ids derived from it (child ids, for one).
  // The history is in protobufjs' own JSON form (enum names, int64 as strings, bytes as base64);
  // historyToJSON from @temporalio/common fails on a second protobufjs copy in node_modules.
  const saved = { workflowId: handle.workflowId, history: await handle.fetchHistory() };
  await writeFile(`${HISTORIES_DIR}${name}.json`, JSON.stringify(saved, null, 2) + '\n');
}

/** Terminates the test's jobs (whatever state they are in), so the workers can shut down. */
export async function terminateJobs(client: Client, jobIds: string[]): Promise<void> {
  await Promise.all(
    jobIds.map((id) =>
      client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined),
    ),
  );
}
