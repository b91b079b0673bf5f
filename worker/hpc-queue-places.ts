import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Logger } from 'pino';
import { WORKER_REFRESH_MS, type HpcQueueBook, type HpcWaitEnded, type HpcWorkerSlots } from '../common/hpc-queue.js';

/** The job a compute stage works on, from its StageRequest argument ({ input: { owner } }); cleanup has none. */
function isStage(args: unknown[]): boolean {
  const first = args[0];
  return typeof first === 'object' && first !== null && typeof (first as { input?: unknown }).input === 'object';
}

/**
 * An HPC worker's side of the waiting line (common/hpc-queue.ts): each compute stage leaves the line as
 * it starts here, and its duration feeds the wait estimates. The worker's slots and how many are busy go
 * with every change and every WORKER_REFRESH_MS, so the line knows when an arriving stage starts at once.
 * Best effort: Redis trouble is logged, and never holds up or fails a stage.
 */
export class HpcQueuePlaces {
  private readonly worker: HpcWorkerSlots;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      book: HpcQueueBook;
      queue: string;
      slots: number;
      log: Logger;
      /** Each stage that had waited in the line, when it starts. */
      onWaitEnded?: (ended: HpcWaitEnded) => void;
    },
  ) {
    this.worker = { workerId: `hpc-${randomUUID()}`, slots: deps.slots, busy: 0 };
    this.timer = setInterval(() => void this.register(), WORKER_REFRESH_MS);
    this.timer.unref();
  }

  /** Tells the line this worker's slots now (at start, before it polls). */
  async register(): Promise<void> {
    await this.deps.book.registerWorker(this.deps.queue, this.worker).catch((err: unknown) => this.warn(err, 'register'));
  }

  /** The worker stops: its slots no longer count. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.deps.book
      .registerWorker(this.deps.queue, { ...this.worker, slots: 0 })
      .catch((err: unknown) => this.warn(err, 'unregister'));
  }

  private warn(err: unknown, what: string, jobId?: string): void {
    this.deps.log.warn({ err: String(err), jobId, queue: this.deps.queue }, `HPC queue line: ${what} not recorded`);
  }

  /** The activity interceptor that reports each compute stage's start and end. */
  interceptor(): ActivityInterceptorsFactory {
    return () => ({
      inbound: {
        execute: async (input, next) => {
          const jobId = Context.current().info.workflowExecution?.workflowId;
          if (!jobId || !isStage(input.args)) return next(input);
          const { book, queue } = this.deps;
          this.worker.busy++;
          const startedAt = Date.now();
          // Best effort and off the stage's path: a Redis failover must not hold up the compute.
          void book
            .started(queue, jobId, this.worker)
            .then((ended) => {
              if (ended) this.deps.onWaitEnded?.(ended);
            })
            .catch((err: unknown) => this.warn(err, 'start', jobId));
          try {
            return await next(input);
          } finally {
            this.worker.busy--;
            void book.finished(queue, jobId, this.worker, Date.now() - startedAt).catch((err: unknown) => this.warn(err, 'finish', jobId));
          }
        },
      },
    });
  }
}
