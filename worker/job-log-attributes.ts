import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** The owner an activity works for, from its argument: a StageRequest ({ input: { owner } }) or a job event ({ owner }). */
function ownerOf(arg: unknown): string | undefined {
  if (typeof arg !== 'object' || arg === null) return undefined;
  const direct = (arg as { owner?: unknown }).owner;
  if (typeof direct === 'string') return direct;
  const nested = (arg as { input?: { owner?: unknown } }).input?.owner;
  return typeof nested === 'string' ? nested : undefined;
}

/** Puts jobId (the workflow id) and owner on every log line an activity writes, whatever the activity. */
export const jobLogAttributes: ActivityInterceptorsFactory = (ctx) => {
  let owner: string | undefined;
  return {
    inbound: {
      async execute(input, next) {
        owner = ownerOf(input.args[0]);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(attributes, next) {
        const jobId = ctx.info.workflowExecution?.workflowId;
        return next({ ...attributes, ...(jobId ? { jobId } : {}), ...(owner ? { owner } : {}) });
      },
    },
  };
};
