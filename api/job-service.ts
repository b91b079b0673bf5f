import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import { newJobId, type AssetReport, type ProcessAssetInput } from '../common/jobs.js';
import { ASSET_NAME, ASSET_OUTCOME, ASSET_OWNER, ASSET_PRESET, ASSET_STAGE } from '../common/search-attributes.js';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.js';

/** A job as the API shows it: what Temporal knows about the workflow, for its owner. */
export interface JobSummary {
  jobId: string;
  assetName: string;
  preset: string | null;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, CONTINUED_AS_NEW. */
  status: string;
  stage: string | null;
  outcome: string | null;
  startTime: string;
  closeTime: string | null;
}

function summarize(
  d: Pick<WorkflowExecutionInfo, 'workflowId' | 'status' | 'startTime' | 'closeTime' | 'typedSearchAttributes'>,
): JobSummary {
  const sa = d.typedSearchAttributes;
  return {
    jobId: d.workflowId,
    assetName: sa.get(ASSET_NAME) ?? '',
    preset: sa.get(ASSET_PRESET) ?? null,
    status: d.status.name,
    stage: sa.get(ASSET_STAGE) ?? null,
    outcome: sa.get(ASSET_OUTCOME) ?? null,
    startTime: d.startTime.toISOString(),
    closeTime: d.closeTime?.toISOString() ?? null,
  };
}

/**
 * Asset jobs as Temporal workflows, seen through their owner. Every lookup checks ownership and
 * answers "not found" for another user's job, so nobody learns whether someone else's job exists.
 */
export class JobService {
  constructor(private readonly client: Client) {}

  /** Starts processAsset for the owner; the workflow id (job id) is returned at once. */
  async start(input: ProcessAssetInput): Promise<string> {
    const jobId = newJobId(input.owner, randomUUID());
    await this.client.workflow.start('processAsset', {
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowId: jobId,
      args: [input],
      memo: { owner: input.owner, assetName: input.assetName },
      typedSearchAttributes: [
        { key: ASSET_OWNER, value: input.owner },
        { key: ASSET_NAME, value: input.assetName },
        { key: ASSET_PRESET, value: input.options.preset },
      ],
      staticSummary: `${input.assetName} for ${input.owner}, ${input.options.preset}`,
    });
    return jobId;
  }

  /** The job if it exists and belongs to owner, else null. */
  async describeOwned(owner: string, jobId: string): Promise<(JobSummary & { description: WorkflowExecutionDescription }) | null> {
    if (!jobId.startsWith(`asset-${owner}-`)) return null;
    try {
      const description = await this.client.workflow.getHandle(jobId).describe();
      if (description.typedSearchAttributes.get(ASSET_OWNER) !== owner) return null;
      return { ...summarize(description), description };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The workflow's result once it completed. */
  async result(jobId: string): Promise<AssetReport> {
    return (await this.client.workflow.getHandle(jobId).result()) as AssetReport;
  }

  /**
   * The owner's jobs, newest first, from Temporal visibility. Paged by start time: pass the last
   * job's startTime as `before` for the next page.
   */
  async list(
    owner: string,
    { limit, before }: { limit: number; before?: Date },
  ): Promise<{ jobs: JobSummary[]; nextBefore: string | null }> {
    // owner is restricted to [A-Za-z0-9._@-] and before is a parsed Date, so nothing can break out of the quotes.
    const query = `AssetOwner = "${owner}"` + (before ? ` AND StartTime < "${before.toISOString()}"` : '');
    const jobs: JobSummary[] = [];
    for await (const info of this.client.workflow.list({ query, pageSize: limit })) {
      jobs.push(summarize(info));
      if (jobs.length >= limit) break;
    }
    jobs.sort((a, b) => b.startTime.localeCompare(a.startTime));
    return { jobs, nextBefore: jobs.length >= limit ? jobs[jobs.length - 1]!.startTime : null };
  }

  /** Requests cancellation; the workflow runs its cleanup and ends as cancelled. */
  async cancel(jobId: string): Promise<void> {
    await this.client.workflow.getHandle(jobId).cancel();
  }
}
