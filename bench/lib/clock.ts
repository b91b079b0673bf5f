/**
 * The benchmark clock: milliseconds of the system's monotonic clock, with sub-millisecond resolution.
 * Every process of a run is on the same machine and reads the same CLOCK_MONOTONIC, so a stamp from one
 * process can be compared with another's. Not `performance.timeOrigin + performance.now()`: timeOrigin is
 * the wall clock at each process's start, so a clock step between two processes' starts (the VM's time
 * sync) skewed them by milliseconds (a run measured a floor p50 of −3.2 ms). Not Date.now(): its 1 ms
 * resolution is coarser than the latencies being measured, and it steps with the wall clock.
 */
export function preciseNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
