import type { BenchInfra } from './bench-stack.js';
import type { BenchChild } from './rpc.js';

/** What the runner gives every benchmark. */
export interface BenchContext {
  infra: BenchInfra;
  /** Small counts and short runs, to keep the harness working in CI; figures are not meaningful. */
  smoke: boolean;
  repeats: number;
  /** Overrides of the default loads (--jobs, --sockets) and compute sizes (--triangles, --texture-size). */
  scales: { jobs?: number[]; sockets?: number[]; triangles?: number[]; textureSize?: number };
  log(message: string): void;
  /**
   * The benchmark worker (synthetic activity on an HPC-style worker), started on first use and kept
   * for the whole run, with maxConcurrentActivityTaskExecutions set for the largest load of the run.
   */
  benchWorker(): Promise<BenchChild>;
}
