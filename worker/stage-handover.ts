import { log } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { z } from 'zod';
import type { JobEventActivities } from '../activities/job-event-activities.js';
import { HpcWaitSchema } from '../common/hpc-queue.js';
import { JobEventFields } from '../common/progress.js';
import { HANDOVER_KEY, type HandedOverResult, type StageHandover } from '../common/stage-handover.js';

const StageHandoverSchema = z.object({
  // A stage's end and the next one's start (common/stage-handover.ts); no more is ever handed over.
  events: z.array(JobEventFields).min(1).max(4),
  wait: HpcWaitSchema.optional(),
});

/** The handover a stage's request carries, or null (cleanup, a job started before handovers, a malformed one). */
function handoverOf(args: unknown[]): StageHandover | null {
  const request = args[0];
  if (typeof request !== 'object' || request === null || !('handover' in request)) return null;
  const parsed = StageHandoverSchema.safeParse(request.handover);
  if (parsed.success) return parsed.data;
  // The workflow then publishes the events itself (it gets the bare result): nothing is lost.
  log.warn('Stage handover not understood; the workflow publishes it', { error: parsed.error.message });
  return null;
}

/**
 * The HPC worker's side of a stage handover (common/stage-handover.ts): once a stage has returned its
 * result, publishes the events its request carries (stamped with the time the stage ended) and puts the
 * next stage in its waiting line, then returns the result with each event's sequence number. A stage
 * that failed or was cancelled hands over nothing. Publishing never fails the stage: events Redis did
 * not take come back as null, and the workflow publishes those itself.
 *
 * Outermost but for the metrics, so the line hears of this stage's end (HpcQueuePlaces) before the next
 * stage joins it.
 */
export function stageHandoverInterceptor(publishJobEvents: JobEventActivities['publishJobEvents']): ActivityInterceptorsFactory {
  return () => ({
    inbound: {
      execute: async (input, next) => {
        const handover = handoverOf(input.args);
        const result = await next(input);
        if (!handover) return result;
        const ts = Date.now();
        try {
          const seqs = await publishJobEvents(
            handover.events.map((fields) => ({ ...fields, ts })),
            undefined,
            handover.wait,
          );
          const handedOver: HandedOverResult = { [HANDOVER_KEY]: seqs, result };
          return handedOver;
        } catch (err) {
          // The stage's work is done and must not be redone for an event: the workflow publishes them instead.
          log.warn('Stage handover not published; the workflow publishes it', { error: String(err) });
          return result;
        }
      },
    },
  });
}
