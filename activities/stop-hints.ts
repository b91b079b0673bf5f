import type { RedisClient } from '../common/redis.js';
import { JobControlMessage, jobControlChannel } from '../common/job-control.js';
import type { Logger } from 'pino';

/**
 * The HPC worker's ear for `stop` control messages (common/job-control.ts): one subscriber connection for
 * the process, subscribed to the control channel of each job that has a stage running here. A stop ends
 * the stage's CPU work within milliseconds of the workflow accepting the cancel, however long the stage
 * waits between heartbeats. A stop that is missed (Redis down, or published before the subscription was
 * confirmed) only costs time: Temporal still delivers the cancel with the answer to a heartbeat.
 */
export class StopHints {
  private readonly watchers = new Map<string, Set<(message: JobControlMessage) => void>>();

  constructor(
    private readonly subscriber: RedisClient,
    private readonly log?: Pick<Logger, 'warn'>,
  ) {
    subscriber.on('message', (channel: string, payload: string) => this.deliver(channel, payload));
  }

  /**
   * Calls onStop when a stop for jobId arrives, until the returned function is called (idempotent). A
   * stop published before Redis confirmed the subscription is not seen.
   */
  watch(jobId: string, onStop: (message: JobControlMessage) => void): () => void {
    const channel = jobControlChannel(jobId);
    let watchers = this.watchers.get(channel);
    if (!watchers) {
      watchers = new Set();
      this.watchers.set(channel, watchers);
      this.subscriber
        .subscribe(channel)
        .catch((err: unknown) =>
          this.log?.warn({ jobId, err: String(err) }, 'Could not watch for stop messages; a cancel will arrive with a heartbeat'),
        );
    }
    watchers.add(onStop);
    const set = watchers;
    return () => {
      if (!set.delete(onStop)) return;
      if (set.size === 0 && this.watchers.get(channel) === set) {
        this.watchers.delete(channel);
        this.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  /** Jobs watched right now (for tests and metrics). */
  get watchedJobs(): number {
    return this.watchers.size;
  }

  private deliver(channel: string, payload: string): void {
    const watchers = this.watchers.get(channel);
    if (!watchers) return;
    let message: JobControlMessage;
    try {
      message = JobControlMessage.parse(JSON.parse(payload));
    } catch (err) {
      this.log?.warn({ channel, err: String(err) }, 'Ignored a malformed job control message');
      return;
    }
    for (const onStop of [...watchers]) onStop(message);
  }
}
