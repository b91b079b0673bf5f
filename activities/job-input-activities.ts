import type { ProcessAssetInput } from '../common/jobs.js';
import { resolveSettings, type PipelineSettings } from '../common/pipeline.js';
import { PLAN_BEFORE_REGISTRY, StagePlan } from '../common/stages.js';

/** A job's settings, or why its options or plan cannot run. */
export type CheckedJobInput = { settings: PipelineSettings } | { invalid: string };

/**
 * Checks a job's options and plan against their schemas and resolves its settings: what processAsset
 * needs before its first stage. A local activity on the orchestrator worker, where zod is loaded once,
 * rather than zod in the workflow bundle, which the worker evaluates again for every workflow it
 * creates (14 ms a workflow on the 2-core machine; BENCHMARKS.md "Make it fast 10"). The API checked
 * both already; this answers a caller that skipped it (a workflow started by hand in the Temporal UI).
 */
async function checkJobInput(input: Pick<ProcessAssetInput, 'options' | 'plan'>): Promise<CheckedJobInput> {
  let settings: PipelineSettings;
  try {
    settings = resolveSettings(input.options);
  } catch (err) {
    return { invalid: `The job options are not valid: ${String(err)}` };
  }
  const plan = StagePlan.safeParse(input.plan ?? PLAN_BEFORE_REGISTRY);
  if (!plan.success) return { invalid: `The job's stage plan is not valid: ${plan.error.message}` };
  return { settings };
}

/** The orchestrator worker's activities for a job's input (see checkJobInput). */
export const jobInputActivities = { checkJobInput };
export type JobInputActivities = typeof jobInputActivities;
