import { defineConfig } from 'vitest/config';

/** The long fault, load and recovery runs of issue 9 (`npm run test:chaos`); RELIABILITY.md lists what each proves. */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    // Faults last 30 s and more, and jobs must then finish: these bound a hang, they are not performance assertions.
    testTimeout: 600_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    pool: 'forks',
    // One stack at a time: each file kills and restarts processes, and they must not compete for the 2 cores.
    maxWorkers: 1,
    fileParallelism: false,
  },
});
