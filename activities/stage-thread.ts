import { Worker } from 'node:worker_threads';
import type { ValidatorMessage } from '../common/pipeline.js';
import { type StageJob, StageThreadMessage } from './stage-job.js';

const BOOT = new URL('./stage-thread-boot.mjs', import.meta.url);
const ENTRY = new URL('./stage-thread-entry.ts', import.meta.url).href;

/** Threads running right now; tests read it to prove a cancelled stage stopped its CPU work. */
const live = new Set<Worker>();

/** Number of stage threads alive in this process. */
export function liveStageThreads(): number {
  return live.size;
}

/** A stage failed inside its thread; failureType says whether retrying can help. */
export class StageFailedError extends Error {
  constructor(
    message: string,
    readonly failureType: string | null,
    readonly details: ValidatorMessage[],
    threadStack?: string,
  ) {
    super(message);
    this.name = 'StageFailedError';
    if (threadStack) this.stack = threadStack;
  }
}

export interface StageThreadEvents {
  onStart(total: number, unit: string, message: string): void;
  onProgress(done: number, message: string | undefined, checkpoint: unknown): void;
}

/**
 * Runs one stage's compute in its own worker thread, so glTF and image work never blocks the event loop
 * that heartbeats. Aborting the signal terminates the thread at once (V8 stops it between instructions,
 * even inside WASM) and rejects with the signal's reason once the thread has exited.
 */
export function runStageThread(job: StageJob, events: StageThreadEvents, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown } | null = null;
    const worker = new Worker(BOOT, { workerData: { entry: ENTRY, job } });
    live.add(worker);
    const end = (result: typeof outcome) => {
      outcome ??= result;
      void worker.terminate();
    };
    const onAbort = () => end({ ok: false, error: signal.reason });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    worker.on('message', (raw: unknown) => {
      if (outcome) return;
      const parsed = StageThreadMessage.safeParse(raw);
      // A throw here would be uncaught and take the whole worker down; fail this stage instead.
      if (!parsed.success)
        return end({ ok: false, error: new Error(`The ${job.stage} thread sent a malformed message: ${parsed.error.message}`) });
      const message = parsed.data;
      switch (message.type) {
        case 'start':
          return events.onStart(message.total, message.unit, message.message);
        case 'progress':
          return events.onProgress(message.done, message.message, message.checkpoint);
        case 'done':
          return end({ ok: true, result: message.result });
        case 'failed':
          return end({ ok: false, error: new StageFailedError(message.message, message.failureType, message.details, message.stack) });
      }
    });
    worker.on('error', (err) => end({ ok: false, error: err }));
    // Settle only once the thread is gone, so "rejected" also means "no longer using the CPU".
    worker.on('exit', (code) => {
      live.delete(worker);
      signal.removeEventListener('abort', onAbort);
      const final = outcome ?? { ok: false, error: new Error(`The ${job.stage} thread exited (code ${code}) before finishing`) };
      if (final.ok) resolve(final.result);
      else reject(final.error);
    });
  });
}
