/**
 * What an HPC worker process starts with, unless its environment already sets it. glibc's allocator gives
 * each thread that allocates its own arena and returns little of an arena's freed memory to the system:
 * after one job of 1M triangles + 8 × 4096² textures (decoded by libvips, read and written by the stage
 * thread) the worker kept ~430 MiB more for good, and the next job's peak grew by as much (1.15 → 1.55 GiB,
 * benchmark 7 at three repeats). Two arenas hold it at 1.10–1.23 GiB. The allocator reads this only at
 * process start, so whatever starts a worker sets it: `npm start` (scripts/start.ts), the image
 * (Dockerfile), and the benchmarks' worker and in-process pipeline.
 */
export const HPC_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** `env` with HPC_PROCESS_ENV's defaults under it (a value the operator set wins). */
export function withHpcProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...HPC_PROCESS_ENV, ...env };
}
