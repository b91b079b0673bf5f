import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, Runtime } from '@temporalio/worker';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../common/config.js';

/** What the workflow bundle is built from: the workflows, what they import, and the locked SDK version. */
const SOURCES = ['workflows', 'common', 'activities'].map((dir) => path.join(PROJECT_ROOT, dir));
const LOCKFILE = path.join(PROJECT_ROOT, 'package-lock.json');

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** A digest of every source file's path and content: any change, anywhere the bundle could import from, gives a new bundle. */
async function sourceDigest(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of [LOCKFILE, ...(await Promise.all(SOURCES.map(filesUnder))).flat()]) {
    hash
      .update(path.relative(PROJECT_ROOT, file))
      .update('\0')
      .update(await readFile(file))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

/**
 * The workflow bundle for the orchestrator worker, from `cacheDir` when the sources are unchanged since
 * it was built. Webpack takes seconds of CPU on every start otherwise, the largest part of a warm
 * `npm start`. The key covers every file the bundle could contain, so a stale bundle is never used.
 */
export async function workflowBundle(workflowsPath: string, cacheDir: string, log: Logger): Promise<{ code: string }> {
  const file = path.join(cacheDir, `workflow-bundle-${await sourceDigest()}.js`);
  const cached = await readFile(file, 'utf8').catch(() => null);
  if (cached) {
    log.info({ file }, 'Workflow bundle unchanged; using the cached one');
    return { code: cached };
  }
  // The runtime's logger: webpack's report goes through pino like the rest of the SDK's lines.
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: Runtime.instance().logger });
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, code, { mode: 0o600 });
  // Atomic: a concurrent start reads either no file or a whole one.
  await rename(partial, file);
  // Bundles of older sources are never used again.
  for (const old of await readdir(cacheDir)) {
    if (old.startsWith('workflow-bundle-') && path.join(cacheDir, old) !== file) await rm(path.join(cacheDir, old), { force: true });
  }
  log.info({ file, bytes: code.length }, 'Workflow bundle built and cached');
  return { code };
}
