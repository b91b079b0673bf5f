import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { HpcQueueBook } from '../common/hpc-queue.js';
import type { JobService } from './job-service.js';

/** Jobs at the head of each line checked per round: the places that matter most to the artists behind them. */
const HEAD = 50;
const DESCRIBES_AT_ONCE = 8;

/**
 * Takes out of the HPC queue lines (common/hpc-queue.ts) jobs that ended without saying so to the line:
 * terminated from the Temporal UI, timed out or reset while nobody watched them. Each round describes the
 * first HEAD waiting jobs of every line and removes those no longer running, so "N jobs ahead" never
 * counts a job that will not start. Several API processes may sweep; a removal is idempotent.
 */
export class HpcQueueSweep {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: { book: HpcQueueBook; jobs: Pick<JobService, 'describe'>; log: Logger; intervalMs: number }) {
    this.timer = setInterval(() => void this.round(), deps.intervalMs);
    this.timer.unref();
  }

  /** One pass over every line; resolves with the job ids it took out. */
  async round(): Promise<string[]> {
    const removed: string[] = [];
    const limit = pLimit(DESCRIBES_AT_ONCE);
    try {
      for (const queue of await this.deps.book.queues()) {
        const head = (await this.deps.book.line(queue)).slice(0, HEAD);
        await Promise.all(
          head.map((jobId) =>
            limit(async () => {
              const job = await this.deps.jobs.describe(jobId);
              if (job?.status === 'RUNNING') return;
              await this.deps.book.leave(jobId, queue);
              removed.push(jobId);
            }),
          ),
        );
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'could not check the HPC queue lines against Temporal; next round retries');
    }
    if (removed.length > 0) this.deps.log.info({ jobs: removed }, 'ended jobs taken out of the HPC queue lines');
    return removed;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
