/**
 * The benchmark clock: wall-clock milliseconds with sub-millisecond resolution. Every process of a run
 * is on the same machine, and `performance.timeOrigin` is taken from the same system clock at each
 * process's start, so stamps from one process can be compared with another's to within microseconds,
 * unlike Date.now(), whose 1 ms resolution is coarser than the latencies being measured.
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
