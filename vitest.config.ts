import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The benchmark smoke run has its own command (npm run bench:smoke, run by .ci/run), and so do the long
    // fault and load runs (npm run test:chaos, vitest.chaos.config.ts): npm test stays fast.
    include: ['{common,activities,workflows,worker,api,storage,scripts,cli,test}/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'test/chaos/**'],
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-runtime.ts'],
    // Real servers start inside tests; these bound a hang, they are not performance assertions.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/summary-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
