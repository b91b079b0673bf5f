import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import { JobPriority, JobRetrySchema, newJobId, ProcessAssetInput, ProcessBatchInput, type JobRetry } from '../common/jobs.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { BUILTIN_STAGES, planStages, type StageDescriptor } from '../common/stages.js';
import { temporalPriority } from '../common/job-priority.js';
import type { PipelineReport } from '../common/pipeline.js';
import {
  ASSET_NAME,
  ASSET_OUTCOME,
  ASSET_OWNER,
  ASSET_PRESET,
  ASSET_PRIORITY,
  ASSET_RETRY_OF,
  ASSET_STAGE,
} from '../common/search-attributes.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';
import type { JobSummary } from '../common/jobs.js';

export type { JobSummary };

/** Where a page of the job list ends: the last job's start time, and its id to order jobs started in the same millisecond. */
export interface JobCursor {
  startTime: Date;
  jobId: string;
}

function cursorOf(job: JobSummary): JobCursor {
  return { startTime: new Date(job.startTime), jobId: job.jobId };
}

/** True when job sorts after the cursor in newest-first order. */
function isBefore(job: JobSummary, cursor: JobCursor): boolean {
  const t = new Date(job.startTime).getTime();
  const c = cursor.startTime.getTime();
  return t < c || (t === c && job.jobId < cursor.jobId);
}

/** The opaque `nextBefore` string clients pass back as `before`. */
export function encodeCursor(cursor: JobCursor): string {
  return Buffer.from(`${cursor.startTime.toISOString()}|${cursor.jobId}`).toString('base64url');
}

/** Parses a `before` cursor; null when it is not one this API issued. */
export function decodeCursor(text: string): JobCursor | null {
  const [time, jobId, ...rest] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  if (!time || !jobId || rest.length > 0 || !/^[A-Za-z0-9._@-]+$/.test(jobId)) return null;
  const startTime = new Date(time);
  return Number.isNaN(startTime.getTime()) ? null : { startTime, jobId };
}

function summarize(
  d: Pick<
    WorkflowExecutionInfo,
    'workflowId' | 'type' | 'status' | 'startTime' | 'closeTime' | 'typedSearchAttributes' | 'memo' | 'parentExecution'
  >,
): JobSummary {
  const sa = d.typedSearchAttributes;
  return {
    jobId: d.workflowId,
    assetName: sa.get(ASSET_NAME) ?? '',
    preset: sa.get(ASSET_PRESET) ?? null,
    priority: JobPriority.nullable()
      .catch(null)
      .parse(sa.get(ASSET_PRIORITY) ?? null),
    retryOf: sa.get(ASSET_RETRY_OF) ?? null,
    // The memo is the workflow's own record; a memo that is not one (edited by hand) reads as none.
    retry: JobRetrySchema.nullable()
      .catch(null)
      .parse(d.memo?.retry ?? null),
    kind: d.type === 'processBatch' ? 'batch' : 'asset',
    // A batch's asset jobs are its children, in the same owner's id space.
    batchId: d.parentExecution?.workflowId?.startsWith('asset-') ? d.parentExecution.workflowId : null,
    status: d.status.name,
    stage: sa.get(ASSET_STAGE) ?? null,
    outcome: sa.get(ASSET_OUTCOME) ?? null,
    startTime: d.startTime.toISOString(),
    closeTime: d.closeTime?.toISOString() ?? null,
  };
}

/** Where a job stands among the others waiting for the HPC machines. */
export interface JobSchedule {
  level: JobPriority;
  /** Fairness key: the owner, or `team:<name>` (common/job-priority.ts fairShareKey). */
  shareKey: string;
  /** Fair-share weights by key (FAIR_SHARE_WEIGHTS); 1 for a key not listed. */
  weights: ReadonlyMap<string, number>;
}

/**
 * Asset jobs as Temporal workflows, seen through their owner. Every lookup checks ownership and
 * answers "not found" for another user's job, so nobody learns whether someone else's job exists.
 */
export class JobService {
  constructor(
    private readonly client: Client,
    /** Where the uploads are: each job retains its input blobs before it starts, so no cleanup deletes them under it. */
    private readonly inputs?: Pick<AssetStorage, 'retainInputs'>,
    /** The stage registry each new job's plan is resolved from (common/stages.ts). */
    private readonly stages: readonly StageDescriptor[] = BUILTIN_STAGES,
  ) {}

  /**
   * Starts processAsset for the owner; the workflow id (job id) is returned at once. `schedule` places
   * the job among the others waiting for the HPC machines (common/job-priority.ts); its activities
   * inherit the workflow's priority and fairness key. A retry records what it retries, who asked and
   * when (memo `retry`, search attribute AssetRetryOf), for the Temporal UI and the page's history.
   * The job's stage plan is resolved here, from today's registry (a retry too: it is a new job), and
   * travels in the workflow input, so the job finishes with it whatever a later deploy changes.
   */
  async start(
    input: ProcessAssetInput,
    schedule: JobSchedule = { level: 'normal', shareKey: input.owner, weights: new Map() },
    retry?: JobRetry,
  ): Promise<string> {
    const jobId = newJobId(input.owner, randomUUID());
    await this.inputs?.retainInputs(jobId, input.files);
    await this.client.workflow.start('processAsset', {
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowId: jobId,
      args: [{ ...input, plan: planStages(this.stages, { preset: input.options.preset, fileNames: input.files.map((f) => f.name) }) }],
      priority: temporalPriority(schedule.level, schedule.shareKey, schedule.weights),
      memo: { owner: input.owner, assetName: input.assetName, ...(retry ? { retry } : {}) },
      typedSearchAttributes: [
        { key: ASSET_OWNER, value: input.owner },
        { key: ASSET_NAME, value: input.assetName },
        { key: ASSET_PRESET, value: input.options.preset },
        { key: ASSET_PRIORITY, value: schedule.level },
        ...(retry ? [{ key: ASSET_RETRY_OF, value: retry.retryOf }] : []),
      ],
      staticSummary: `${input.assetName} for ${input.owner}, ${input.options.preset}${retry ? `, retry of ${retry.retryOf} by ${retry.by}` : ''}`,
    });
    return jobId;
  }

  /**
   * Starts processBatch for the owner: one asset job per input, at most `concurrency` at a time, each
   * a child of the batch (its own job id, `asset-<owner>-…`, in the owner's list with `batchId` set). The
   * batch id lives in the same id space, so every ownership check covers it. The batch's priority and
   * fair share are its children's: the whole batch draws on its owner's (or team's) one share.
   */
  async startBatch(
    owner: string,
    assets: ProcessAssetInput[],
    { schedule, concurrency, name, retry }: { schedule: JobSchedule; concurrency: number; name: string; retry?: JobRetry },
  ): Promise<string> {
    const batchId = newJobId(owner, randomUUID());
    const planned = assets.map((input) => ({
      ...input,
      plan: planStages(this.stages, { preset: input.options.preset, fileNames: input.files.map((f) => f.name) }),
    }));
    // The batch holds its assets' inputs until its children have taken them over.
    await this.inputs?.retainInputs(
      batchId,
      assets.flatMap((a) => a.files),
    );
    await this.client.workflow.start('processBatch', {
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowId: batchId,
      args: [ProcessBatchInput.parse({ owner, assets: planned, concurrency })],
      priority: temporalPriority(schedule.level, schedule.shareKey, schedule.weights),
      memo: { owner, assetName: name, kind: 'batch', ...(retry ? { retry } : {}) },
      typedSearchAttributes: [
        { key: ASSET_OWNER, value: owner },
        { key: ASSET_NAME, value: name },
        { key: ASSET_PRIORITY, value: schedule.level },
        ...(retry ? [{ key: ASSET_RETRY_OF, value: retry.retryOf }] : []),
      ],
      staticSummary: `Batch "${name}" of ${assets.length} assets for ${owner}${retry ? `, retry of ${retry.retryOf} by ${retry.by}` : ''}`,
    });
    return batchId;
  }

  /** The asset jobs of a batch (its children), from visibility, one row per job. */
  async childrenOf(batchId: string): Promise<JobSummary[]> {
    // batchId is a JobId ([A-Za-z0-9._@-]): nothing can break out of the quotes.
    const children = new Map<string, JobSummary>();
    for await (const info of this.client.workflow.list({ query: `ParentWorkflowId = "${batchId}"`, pageSize: 1000 })) {
      children.set(info.workflowId, summarize(info));
    }
    return [...children.values()];
  }

  /** The inputs a batch was started with, read back from its history (for a retry of its failed assets). */
  async batchInputOf(batchId: string): Promise<ProcessBatchInput> {
    return ProcessBatchInput.parse(await this.startInput(batchId));
  }

  /** The job if it exists and belongs to owner, else null. */
  async describeOwned(
    owner: string,
    jobId: string,
  ): Promise<(JobSummary & { owner: string | null; description: WorkflowExecutionDescription }) | null> {
    if (!jobId.startsWith(`asset-${owner}-`)) return null;
    const job = await this.describe(jobId);
    return job && job.owner === owner ? job : null;
  }

  /** The job whoever owns it, or null when there is no such workflow: for the API's own bookkeeping only. */
  async describe(jobId: string): Promise<(JobSummary & { owner: string | null; description: WorkflowExecutionDescription }) | null> {
    try {
      const description = await this.client.workflow.getHandle(jobId).describe();
      return { ...summarize(description), owner: description.typedSearchAttributes.get(ASSET_OWNER) ?? null, description };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The input a job was started with, read back from its history (for a retry with the same upload). */
  async inputOf(jobId: string): Promise<ProcessAssetInput> {
    return ProcessAssetInput.parse(await this.startInput(jobId));
  }

  private async startInput(jobId: string): Promise<unknown> {
    const history = await this.client.workflow.getHandle(jobId).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payload = started?.input?.payloads?.[0];
    if (!payload) throw new Error(`Job ${jobId} has no start input in its history`);
    // No payload codec is configured, so the history payload is the converter's plain encoding.
    return this.client.options.loadedDataConverter.payloadConverter.fromPayload(payload);
  }

  /** The workflow's result once it completed. */
  async result(jobId: string): Promise<PipelineReport> {
    return (await this.client.workflow.getHandle(jobId).result()) as PipelineReport;
  }

  /**
   * The owner's jobs, newest first, from Temporal visibility, `limit` at a time. `before` is the
   * previous page's `nextBefore` cursor (the last job's start time and id, so jobs started in the same
   * millisecond are neither skipped nor repeated).
   *
   * SQL visibility (the dev server, PostgreSQL) supports no ORDER BY and lists running jobs first, so
   * the page is cut from the owner's jobs, one row per job, sorted here. That reads every visibility row
   * of the owner: fine for an artist's hundreds of jobs; with Elasticsearch visibility an
   * `ORDER BY StartTime DESC` query would make it one page read.
   */
  async list(
    owner: string,
    { limit, before }: { limit: number; before?: JobCursor },
  ): Promise<{ jobs: JobSummary[]; nextBefore: string | null }> {
    // owner is restricted to [A-Za-z0-9._@-], so nothing can break out of the quotes. Every run of the
    // owner's jobs is read, not just those before the cursor: a job reset in Temporal has a row per run,
    // and only once they are all seen can the job be listed once, as its current run, on one page.
    const query = `AssetOwner = "${owner}"`;
    const current = new Map<string, { job: JobSummary; running: boolean }>();
    for await (const info of this.client.workflow.list({ query, pageSize: 1000 })) {
      const job = summarize(info);
      const running = info.status.name === 'RUNNING';
      const seen = current.get(job.jobId);
      // The current run is the one running (a reset closes the old run as it starts the new one), else
      // the one that closed last.
      if (!seen || (running && !seen.running) || (!seen.running && (job.closeTime ?? '') > (seen.job.closeTime ?? ''))) {
        current.set(job.jobId, { job, running });
      }
    }
    const all = [...current.values()].map((c) => c.job).filter((job) => !before || isBefore(job, before));
    all.sort((a, b) => (isBefore(a, cursorOf(b)) ? 1 : -1));
    const jobs = all.slice(0, limit);
    const last = jobs.at(-1);
    return { jobs, nextBefore: all.length > limit && last ? encodeCursor(cursorOf(last)) : null };
  }

  /** Requests cancellation; the workflow runs its cleanup and ends as cancelled. */
  async cancel(jobId: string): Promise<void> {
    await this.client.workflow.getHandle(jobId).cancel();
  }
}
