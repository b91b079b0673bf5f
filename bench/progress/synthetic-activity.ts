import { Context } from '@temporalio/activity';
import type { Redis } from 'ioredis';
import type { JobLog } from '../../common/job-log.js';
import { ProgressReporter } from '../../activities/progress-reporter.js';
import { preciseNow } from '../lib/clock.js';
import type { SyntheticJobInput, SyntheticJobResult } from './bench-queues.js';

/** The stage name synthetic jobs report under. */
export const SYNTHETIC_STAGE = 'synthetic';

/**
 * Prefix of the progress `message` carrying the moment of the report call. The reporter's own `ts`
 * is re-stamped when a coalesced update is sent late; the call time in the message is not, so the
 * latency measured from it includes any delay the coalescing adds.
 */
export const CALL_TIME_PREFIX = 't:';

/**
 * Synthetic compute activity for the progress benchmark: no compute, only a real ProgressReporter
 * (default coalescing, real JobLog, real heartbeats) called at `hz` for `updates` reports.
 */
export function createSyntheticActivities(deps: { jobLog: JobLog; reader: Redis; maxRate: number; onDrop?: (err: unknown) => void }) {
  // One poll loop per start key for the whole process, not one per job: 1,000 jobs polling would load Redis.
  const starts = new Map<string, Promise<void>>();
  function startSignal(goKey: string): Promise<void> {
    let signal = starts.get(goKey);
    if (!signal) {
      signal = (async () => {
        while ((await deps.reader.exists(goKey)) === 0) await new Promise((r) => setTimeout(r, 20));
      })();
      starts.set(goKey, signal);
    }
    return signal;
  }

  return {
    async reportSyntheticProgress(input: SyntheticJobInput): Promise<SyntheticJobResult> {
      const ctx = Context.current();
      const jobId = ctx.info.workflowExecution?.workflowId ?? ctx.info.activityId;
      const reporter = new ProgressReporter({
        jobId,
        owner: input.owner,
        stages: [SYNTHETIC_STAGE],
        attempt: ctx.info.attempt,
        jobLog: deps.jobLog,
        heartbeat: (details) => ctx.heartbeat(details),
        maxRate: deps.maxRate,
        now: preciseNow,
        onDrop: deps.onDrop,
      });
      reporter.startStage(SYNTHETIC_STAGE, input.updates, 'updates', 'waiting for the start signal');
      await startSignal(input.goKey);
      const period = 1000 / input.hz;
      await new Promise((r) => setTimeout(r, input.phase * period));
      let calls = 0;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          calls++;
          const message = `${CALL_TIME_PREFIX}${preciseNow()}`;
          if (calls < input.updates) reporter.update(calls, message);
          else {
            reporter.finishStage(message);
            clearInterval(timer);
            resolve();
          }
        }, period);
      });
      await reporter.flush();
      return { calls, published: reporter.published, dropped: reporter.dropped };
    },
  };
}

export type SyntheticActivities = ReturnType<typeof createSyntheticActivities>;
