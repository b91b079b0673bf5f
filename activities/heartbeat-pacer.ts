/** Slowest a running stage may heartbeat: well inside the 30 s heartbeat timeout, so a live stage is never timed out. */
export const MAX_HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * Spreads one worker's heartbeats to Temporal over its running activities. Each heartbeat is an RPC the
 * Temporal server persists; at one a second per stage, 1,000 running stages cost the server 1,000 writes a
 * second (most of a core of the dev server in benchmark 1). The pacer gives each stage an interval of
 * `running / maxPerSecond` seconds, never shorter than `minIntervalMs` (the worker's heartbeat throttle)
 * nor longer than MAX_HEARTBEAT_INTERVAL_MS. Temporal's cancel reaches a stage with the answer to its
 * next heartbeat, within one interval: 1 s while this worker runs no more than maxPerSecond stages (any
 * HPC machine's normal load), longer only past that; the stop message from Redis (StopHints) usually ends
 * the work first. Progress to Redis is not paced.
 */
export class HeartbeatPacer {
  private running = 0;

  constructor(
    private readonly options: {
      /** Heartbeats per second this worker may send in all (HPC_HEARTBEATS_PER_SECOND). */
      maxPerSecond: number;
      /** Shortest interval: the worker's maxHeartbeatThrottleInterval. */
      minIntervalMs: number;
    },
  ) {
    if (!(options.maxPerSecond > 0)) throw new Error(`maxPerSecond must be positive (got ${options.maxPerSecond})`);
  }

  /** Counts a running activity until the returned function is called (once). */
  join(): () => void {
    this.running++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.running--;
    };
  }

  /** How long each running activity should leave between heartbeats now. */
  intervalMs(): number {
    const spread = (this.running * 1000) / this.options.maxPerSecond;
    return Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(this.options.minIntervalMs, spread));
  }
}
