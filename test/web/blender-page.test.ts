import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { PREVIEW_FILES } from '../../common/pipeline.js';
import { launchChromium } from '../helpers/browser.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS } from '../helpers/upload.js';

const SCREENSHOTS = path.join(PROJECT_ROOT, 'test-results', 'web');
/** Bounds a wait for the job (Blender and the pipeline on a shared 2-core machine); not a performance assertion. */
const JOB_TIMEOUT_MS = 240_000;

describe('an FBX through the artist’s page: Chromium against the real stack', () => {
  let stack: TestStack;
  let browser: Browser;
  let context: BrowserContext;
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium({ webgl: true })]);
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await stack?.stop();
  });

  it('uploads DamagedHelmet.fbx, shows its still in the job list and plays its turntable in the result view', async () => {
    context = await browser.newContext({ viewport: { width: 1366, height: 820 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[page] ${err.message}`));
    await page.goto(stack.apiUrl);
    await page.getByLabel('User name').fill('dana');
    await page.getByLabel('User name').press('Enter');
    await page.locator('#connection[data-state="online"]').waitFor();

    await page.locator('#file-input').setInputFiles([path.join(SHARED_ASSETS, 'DamagedHelmet.fbx')]);
    await page.locator('#upload-queue li[data-asset="DamagedHelmet.fbx"]').waitFor();
    await page.locator('#upload-button').click();
    const job = page.locator('article.job', { has: page.locator('h3', { hasText: 'DamagedHelmet.fbx' }) });
    // The import is the job's first stage, listed before the glTF stages and the preview after them.
    await job.locator('.stages li', { hasText: 'import' }).waitFor();
    await job.and(page.locator('[data-phase="completed"]')).waitFor({ timeout: JOB_TIMEOUT_MS });
    const stages = await job.locator('.stages li').allTextContents();
    expect(stages.map((s) => s.replace(/^✓ | \(done\)$/g, ''))).toEqual([
      'import',
      'inspect',
      'validate',
      'optimize',
      'lods',
      'textures',
      'package',
      'preview',
    ]);

    // The card's still is the turntable's first frame, at the size the stack renders (64², test/helpers/stack.ts).
    const still = job.locator('img.thumbnail');
    await still.waitFor({ state: 'visible' });
    await expect(still.getAttribute('alt')).resolves.toBe('Turntable still of DamagedHelmet.fbx');
    expect(await still.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);

    await job.getByRole('button', { name: 'Result & downloads' }).click();
    const dialog = page.locator('#result-dialog');
    await dialog.getByRole('heading', { name: 'Turntable' }).waitFor();
    const turntable = dialog.locator('img.turntable[data-ready="true"]');
    await turntable.waitFor({ timeout: 60_000 });
    await expect(turntable.getAttribute('alt')).resolves.toBe('Turntable of DamagedHelmet.fbx');
    // What it plays is the animated WebP: a RIFF WebP with an ANIM chunk, 64² frames.
    const shown = await turntable.evaluate(async (img: HTMLImageElement) => {
      const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
      const text = String.fromCharCode(...bytes.subarray(0, 64));
      return { riff: text.slice(0, 4), webp: text.slice(8, 12), animated: text.includes('ANIM'), width: img.naturalWidth };
    });
    expect(shown).toEqual({ riff: 'RIFF', webp: 'WEBP', animated: true, width: 64 });
    // Both are downloads too, beside the GLBs.
    for (const name of Object.values(PREVIEW_FILES)) await dialog.locator(`button[data-output="${name}"]`).waitFor();
    await expect(dialog.locator('button[data-output="DamagedHelmet-lod0.glb"]').count()).resolves.toBe(1);
    // The optimised pane draws what Blender made of the FBX; the original pane says why it is empty.
    await dialog.locator('canvas[aria-label^="Optimised"][data-ready="true"]').waitFor({ timeout: 60_000 });
    await dialog.getByText('The original DamagedHelmet.fbx is not drawn here').waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, '20-fbx-turntable.png'), fullPage: true });
  }, 400_000);
});
