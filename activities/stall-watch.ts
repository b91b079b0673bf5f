/**
 * Notices a stage that stopped making progress while its process is alive. The activity keeps
 * heartbeating from the main thread while its worker thread computes, so Temporal's heartbeat timeout
 * never fires for a hung thread: this watch is what flags it, to the artist, in metrics and on the
 * workflow, long before the stage's start-to-close timeout.
 */
export class StallWatch {
  private lastProgressAt: number;
  private stalledSince: number | null = null;

  constructor(
    private readonly options: {
      stallAfterMs: number;
      onStall: (silentForMs: number) => void;
      onRecover: (stalledForMs: number) => void;
      now?: () => number;
    },
  ) {
    this.lastProgressAt = this.now();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  get stalled(): boolean {
    return this.stalledSince !== null;
  }

  /** The stage moved forward: clears a stall. */
  progress(): void {
    const now = this.now();
    this.lastProgressAt = now;
    if (this.stalledSince !== null) {
      const stalledFor = now - this.stalledSince;
      this.stalledSince = null;
      this.options.onRecover(stalledFor);
    }
  }

  /** Called periodically (with the heartbeat tick): raises the stall once when progress has been silent too long. */
  check(): void {
    const silent = this.now() - this.lastProgressAt;
    if (this.stalledSince === null && silent >= this.options.stallAfterMs) {
      this.stalledSince = this.now();
      this.options.onStall(silent);
    }
  }
}
