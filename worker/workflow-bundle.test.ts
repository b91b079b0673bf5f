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
});
