/** Task queues of the benchmark's own worker, apart from the product's so nothing else takes its tasks. */
export const BENCH_HPC_QUEUE = 'bench-hpc';
export const BENCH_ORCHESTRATOR_QUEUE = 'bench-orchestrator';

/** What one synthetic job does: `updates` progress reports at `hz`, after the run's start signal. */
export interface SyntheticJobInput {
  owner: string;
  updates: number;
  hz: number;
  /**
   * Redis key the runner sets once every client is subscribed; jobs report only after it. Each job then
   * stores its result in the hash `<goKey>:results` (field: its job id) and holds its slot until the runner
   * sets `<goKey>:release`, once the clients have every message.
   */
  goKey: string;
  /** 0..1: where in the first period this job's ticks fall, so jobs do not all tick at the same instant. */
  phase: number;
}

/** What the reporter did for one job, for delivered/expected accounting. */
export interface SyntheticJobResult {
  /** update()/finishStage() calls after the start signal. */
  calls: number;
  /** Messages mirrored to Redis after the start signal: what the clients should receive. */
  published: number;
  /** Messages the reporter could not mirror (Redis slow or down), over the whole activity. */
  dropped: number;
  /** Report call → Redis's answer to the publish, per mirrored update after the start signal (ms). */
  publishRoundTripsMs?: number[];
}
