import type { BenchInfra } from './bench-stack.js';

/** What the runner gives every benchmark. */
export interface BenchContext {
  infra: BenchInfra;
  /** Small counts and short runs, to keep the harness working in CI; figures are not meaningful. */
  smoke: boolean;
  repeats: number;
  log(message: string): void;
}
