import type { TestProject } from 'vitest/node';
import { buildWebIfStale } from '../scripts/build-web.js';
import { resolveTemporalCli, resolveTestServer, resolveVersitygw } from '../scripts/provision.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalCliPath: string | null;
    testServerPath: string | null;
    versitygwPath: string | null;
  }
}

/** Resolves (and if need be installs) the Temporal binaries once for the whole run, and builds the web page if stale. */
export default async function setup(project: TestProject): Promise<void> {
  const cli = resolveTemporalCli();
  const testServer = resolveTestServer();
  console.log(`[test] ${cli.describe}\n[test] ${testServer.describe}`);
  project.provide('temporalCliPath', cli.path);
  project.provide('testServerPath', testServer.path);
  // Built once here (go install, minutes on a fresh machine) rather than inside a test's hook timeout; none
  // without a Go toolchain, and then only the STORAGE=s3 tests fail, saying how to get it.
  const versitygw = resolveVersitygw();
  console.log(`[test] ${versitygw?.describe ?? 'versitygw: none found and no Go toolchain to build it (only the S3 tests need it)'}`);
  project.provide('versitygwPath', versitygw?.path ?? null);
  // The API serves web/dist; the browser tests need the current page.
  await buildWebIfStale((line) => console.log(`[test] ${line}`));
}
