import type { HpcWait } from './hpc-queue.js';
import type { JobEventFields } from './progress.js';

/**
 * A stage's handover to the next one: the events that say so (`stage-finished` of this stage, then
 * `stage-started` of the next) and where the next one waits for a slot. The workflow puts it in the
 * request of every stage that has a next one; the HPC worker publishes it as the stage ends
 * (worker/stage-handover.ts), so the workflow needs no local activity between two stages: each of those
 * cost a few milliseconds and a second workflow activation in the job's path (BENCHMARKS.md, "Make it fast 9").
 *
 * Plain types and functions only: the workflow bundle imports this file.
 */
export interface StageHandover {
  events: JobEventFields[];
  /** Where the next stage waits for a slot: it joins that line once the events are out (as publishJobEvents does). */
  wait?: HpcWait;
}

/** The key of a handed-over stage's result: `{ [HANDOVER_KEY]: seqs, result }`. */
export const HANDOVER_KEY = 'asset-farm.handover';

/** What the HPC worker returns for a stage it handed over: the stage's own result and each event's sequence number (null: Redis did not take it). */
export interface HandedOverResult {
  [HANDOVER_KEY]: (number | null)[];
  result: unknown;
}

/**
 * The stage's result and what came of its handover: the sequence numbers answered, or null when the
 * worker did not hand over (one that predates handovers returns the bare result; the workflow then
 * publishes the events itself).
 */
export function unwrapHandover(raw: unknown): { result: unknown; seqs: (number | null)[] | null } {
  if (typeof raw === 'object' && raw !== null && HANDOVER_KEY in raw && 'result' in raw) {
    const { [HANDOVER_KEY]: seqs, result } = raw as HandedOverResult;
    if (Array.isArray(seqs)) return { result, seqs };
  }
  return { result: raw, seqs: null };
}
