import type { Worker } from '@temporalio/worker';
import type { RedisClient } from '../common/redis.js';
import type { Logger } from 'pino';

/** How long closing one connection may take before it is dropped: a dead Redis must not hold up the exit. */
const CLOSE_TIMEOUT_MS = 3000;

/**
 * The life of a worker process, the same for both workers. On SIGINT/SIGTERM, in order: the Temporal
 * SDK stops polling and lets running tasks finish (cancelling them after the worker's shutdownGraceTime),
 * then the Temporal connection, Redis and the metrics endpoint are closed and the process exits. A signal
 * that comes before the worker runs (still connecting) exits at once; a shutdown that overruns the grace
 * time by `hardDeadlineMs` exits anyway, so a stop never waits for a SIGKILL.
 */
export class WorkerLifecycle {
  private readonly closers: { name: string; close: () => Promise<unknown> }[] = [];
  private running = false;
  private exiting = false;

  constructor(
    private readonly log: Logger,
    private readonly options: { graceMs: number; hardDeadlineMs?: number },
  ) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => this.onSignal(signal));
  }

  /** Registers something to close at exit, after the worker has stopped; closed in the order registered. */
  onClose(name: string, close: () => Promise<unknown>): void {
    this.closers.push({ name, close });
  }

  /** Registers a Redis connection: QUIT (pending replies are read), or dropped if Redis does not answer. */
  closeRedisAtExit(name: string, redis: RedisClient): void {
    this.onClose(name, () => redis.quit().finally(() => redis.disconnect()));
  }

  /** Runs the worker until it is shut down, closes everything and exits the process. */
  async run(worker: Worker): Promise<never> {
    this.running = true;
    let code = 0;
    try {
      await worker.run();
    } catch (err) {
      this.log.error({ err }, 'worker failed');
      code = 1;
    }
    return this.closeAndExit(code);
  }

  private onSignal(signal: NodeJS.Signals): void {
    this.log.info({ signal }, this.running ? 'Stopping: no new tasks; running ones finish or are cancelled' : 'Stopping before start');
    // While running, the SDK's own handler for the same signal shuts the worker down and run() returns.
    if (!this.running) void this.closeAndExit(0);
    const deadline = setTimeout(
      () => {
        this.log.error(
          { afterMs: this.options.graceMs + (this.options.hardDeadlineMs ?? 10_000) },
          'Shutdown overran its grace time; exiting',
        );
        process.exit(1);
      },
      this.options.graceMs + (this.options.hardDeadlineMs ?? 10_000),
    );
    deadline.unref();
  }

  private async closeAndExit(code: number): Promise<never> {
    if (!this.exiting) {
      this.exiting = true;
      for (const { name, close } of this.closers) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS)));
        const outcome = await Promise.race([close().then(() => 'closed' as const), timeout]).catch((err: unknown) => {
          this.log.warn({ err, what: name }, 'could not close cleanly');
          return 'failed' as const;
        });
        clearTimeout(timer);
        if (outcome === 'timeout') this.log.warn({ what: name, afterMs: CLOSE_TIMEOUT_MS }, 'close timed out; dropping it');
      }
      this.log.info('Worker stopped');
      process.exit(code);
    }
    // A second caller waits for the first one's exit.
    return new Promise<never>(() => {});
  }
}
