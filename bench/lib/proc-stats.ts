import { readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux this runs on (getconf CLK_TCK). */
const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far, from /proc; NaN when it is gone or not Linux. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident and peak resident memory of a process in bytes, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** Resets a process's peak-RSS mark (VmHWM) so a later reading covers only what follows. Linux 4.0+. */
export function resetPeakMemory(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's CPU over an interval: call stop() for the CPU seconds used and the share of one core. */
export function startCpuMeter(pids: Record<string, number>): () => Record<string, { cpuSeconds: number; coreShare: number }> {
  const t0 = performance.now();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return () => {
    const elapsed = (performance.now() - t0) / 1000;
    return Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => {
        const used = cpuSeconds(pid) - before[name]!;
        return [name, { cpuSeconds: used, coreShare: used / elapsed }];
      }),
    );
  };
}
