import { defineConfig } from 'vitest/config';

/** The benchmark smoke run (`npm run bench:smoke`): every benchmark at tiny scale, checking fields, never times. */
export default defineConfig({
  test: {
    include: ['bench/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    testTimeout: 600_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 1,
  },
});
