import type { TestProject } from 'vitest/node';
import { resolveTemporalCli, resolveTestServer } from '../scripts/provision.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalCliPath: string | null;
    testServerPath: string | null;
  }
}

/** Resolves (and if need be installs) the Temporal binaries once for the whole run. */
export default function setup(project: TestProject): void {
  const cli = resolveTemporalCli();
  const testServer = resolveTestServer();
  console.log(`[test] ${cli.describe}\n[test] ${testServer.describe}`);
  project.provide('temporalCliPath', cli.path);
  project.provide('testServerPath', testServer.path);
}
