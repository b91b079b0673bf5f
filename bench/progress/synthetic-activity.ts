import { Context } from '@temporalio/activity';
import type { Redis } from 'ioredis';
import type { JobLog } from '../../common/job-log.js';
import type { HeartbeatPacer } from '../../activities/heartbeat-pacer.js';
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
export function createSyntheticActivities(deps: {
  jobLog: JobLog;
  reader: Redis;
  maxRate: number;
  /** As the HPC worker's: the worker's heartbeats spread over its running activities. */
  heartbeatPacer?: HeartbeatPacer;
  onDrop?: (err: unknown) => void;
}) {
  // One poll loop per key for the whole process, not one per job: 1,000 jobs polling would load Redis.
  const signals = new Map<string, Promise<void>>();
  function keySet(key: string): Promise<void> {
    let signal = signals.get(key);
    if (!signal) {
      signal = (async () => {
        // A command timing out on a saturated machine is not a failure of the job: poll on.
        while ((await deps.reader.exists(key).catch(() => 0)) === 0) await new Promise((r) => setTimeout(r, 20));
        signals.delete(key);
      })();
      signals.set(key, signal);
    }
    return signal;
  }

  async function reportSyntheticProgress(input: SyntheticJobInput): Promise<SyntheticJobResult> {
    const ctx = Context.current();
    const pacer = deps.heartbeatPacer;
    const leavePacer = pacer?.join();
    try {
      return await report(ctx, input, pacer);
    } finally {
      leavePacer?.();
    }
  }

  async function report(ctx: Context, input: SyntheticJobInput, pacer: HeartbeatPacer | undefined): Promise<SyntheticJobResult> {
    const jobId = ctx.info.workflowExecution?.workflowId ?? ctx.info.activityId;
    // Updates mirrored after the start signal: counted by their own timestamp, so a stage start whose
    // publish resolves late (or was dropped under load) never skews what the clients are expected to get.
    let startedAt = Number.POSITIVE_INFINITY;
    let publishedAfterStart = 0;
    const roundTrips: number[] = [];
    const reporter = new ProgressReporter({
      jobId,
      owner: input.owner,
      stages: [SYNTHETIC_STAGE],
      attempt: ctx.info.attempt,
      jobLog: deps.jobLog,
      heartbeat: (details) => ctx.heartbeat(details),
      maxRate: deps.maxRate,
      ...(pacer ? { heartbeatIntervalMs: () => pacer.intervalMs() } : {}),
      now: preciseNow,
      onDrop: deps.onDrop,
      onPublished: (_seq, producedAt) => {
        if (producedAt < startedAt) return;
        publishedAfterStart++;
        // Report call → Redis's answer to the publish script, in this process: the producer's share of the latency.
        roundTrips.push(preciseNow() - producedAt);
      },
    });
    reporter.startStage(SYNTHETIC_STAGE, input.updates, 'updates', 'waiting for the start signal');
    // Counted on the reader connection (queued and retried), not inferred from the stage start, which the
    // publisher may drop by design when Redis is slow.
    for (let attempt = 1; ; attempt++) {
      try {
        await deps.reader.incr(`${input.goKey}:ready`);
        break;
      } catch (err) {
        // Under a 1,000-job start on a busy machine a command can time out; one lost job would void the run.
        if (attempt >= 20) throw err;
        ctx.heartbeat();
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    // Waiting for 1,000 jobs to start can outlast the heartbeat timeout: keep this one alive meanwhile,
    // at the pacer's interval (a heartbeat every 2 s from each of 1,000 waiting jobs would load Temporal).
    const waitAlive = async (key: string) => {
      const keepAlive = setInterval(() => ctx.heartbeat(), pacer?.intervalMs() ?? 2000);
      try {
        await keySet(key);
      } finally {
        clearInterval(keepAlive);
      }
    };
    await waitAlive(input.goKey);
    startedAt = preciseNow();
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
    const result: SyntheticJobResult = {
      calls,
      published: publishedAfterStart,
      dropped: reporter.dropped,
      publishRoundTripsMs: roundTrips,
    };
    // The runner reads results from Redis and releases the jobs once the clients have every message: 1,000
    // lockstep jobs completing at once (seconds of Temporal CPU) would otherwise land on the last updates
    // of the others, which is a burst of the benchmark's making, not the progress path's.
    await deps.reader.hset(`${input.goKey}:results`, jobId, JSON.stringify(result));
    await waitAlive(`${input.goKey}:release`);
    return result;
  }

  return { reportSyntheticProgress };
}

export type SyntheticActivities = ReturnType<typeof createSyntheticActivities>;
