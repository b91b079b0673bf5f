import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import { workflowBundle } from './workflow-bundle.js';

const WORKFLOWS = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

describe('the cached workflow bundle', () => {
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-bundle-'));
  afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));
  const log = createLogger('test', 'silent');

  it('is built once, then read back unchanged while the sources are the same; older bundles are removed', async () => {
    writeFileSync(path.join(cacheDir, 'workflow-bundle-0123456789abcdef0123456789abcdef.js'), 'stale');
    const built = await workflowBundle(WORKFLOWS, cacheDir, log);
    expect(built.code).toContain('processAsset');
    const files = readdirSync(cacheDir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^workflow-bundle-[0-9a-f]{32}\.js$/);
    expect(files[0]).not.toBe('workflow-bundle-0123456789abcdef0123456789abcdef.js');

    // Marked on disk: the second call returns the marked file, so it read the cache instead of bundling.
    const marked = `${built.code}\n// cached`;
    writeFileSync(path.join(cacheDir, files[0]!), marked);
    const again = await workflowBundle(WORKFLOWS, cacheDir, log);
    expect(again.code).toBe(marked);
    expect(readdirSync(cacheDir)).toEqual(files);
  });

  it('holds no package but the SDK and its own dependencies: no zod, which every workflow would evaluate again', async () => {
    const { code } = await workflowBundle(WORKFLOWS, cacheDir, log);
    // Webpack names each module by its path: ./node_modules/<package>/... or ./<project folder>/...
    const packages = new Set([...code.matchAll(/"\.\/node_modules\/((?:@[^/"]+\/)?[^/"]+)\//g)].map((m) => m[1]!));
    expect(packages.size).toBeGreaterThan(1);
    expect(
      [...packages].filter((name) => !['@temporalio/common', '@temporalio/workflow', 'nexus-rpc', 'long', 'ms'].includes(name)),
    ).toEqual([]);
    const ours = new Set([...code.matchAll(/"\.\/(common|workflows|activities)\/([^"]+)"/g)].map((m) => `${m[1]}/${m[2]}`));
    expect(ours).toContain('workflows/process-asset.ts');
    expect(ours).toContain('common/failure-catalogue.ts');
    expect([...ours].filter((file) => file.startsWith('activities/'))).toEqual([]);
  });
});
