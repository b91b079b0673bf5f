import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { placesPerWait } from '../helpers/queue-places.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS } from '../helpers/upload.js';

const TWO_CUBES = path.join(SHARED_ASSETS, 'TwoCubes.glb');
const FOLDER_ASSETS = 30;
/** Bounds the waits (30 jobs on a shared 2-core machine); not a performance assertion. */
const TIMEOUT_MS = 600_000;

/**
 * Issue 21's check as two artists make it, in two browsers on one stack: A drops a folder of 30 assets,
 * B uploads one asset a moment later. B's job must not wait behind A's folder: it completes while most
 * of A's assets have not; while it waits for the HPC machine its card says how many jobs are ahead, a
 * number that only counts down and is never more than A's batch has waiting (4 at a time); and A's
 * folder is one batch card with its 30 assets listed.
 */
describe('two artists share the farm, each in their own browser', () => {
  let stack: TestStack;
  let browser: Browser;
  let folder: string;

  beforeAll(async () => {
    folder = path.join(mkdtempSync(path.join(os.tmpdir(), 'asset-farm-two-artists-')), 'props');
    mkdirSync(folder);
    for (let i = 1; i <= FOLDER_ASSETS; i++) copyFileSync(TWO_CUBES, path.join(folder, `crate-${String(i).padStart(2, '0')}.glb`));
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (folder) rmSync(path.dirname(folder), { recursive: true, force: true });
  });

  async function signIn(user: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 820 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[page ${user}] ${err.message}`));
    await page.goto(stack.apiUrl);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('User name').press('Enter');
    await page.locator('#connection[data-state="online"]').waitFor();
    return page;
  }

  it(
    'B’s one asset starts while A’s 30-asset folder runs, B is told an honest place, and A’s folder is one batch',
    async () => {
      const [ana, ben] = await Promise.all([signIn('ana'), signIn('ben')]);

      await ana.locator('#folder-input').setInputFiles(folder);
      await ana
        .locator('#upload-queue li[data-asset]')
        .nth(FOLDER_ASSETS - 1)
        .waitFor();
      await ana.locator('#upload-button').click();
      const batch = ana.locator('article.job[data-kind="batch"]', { has: ana.locator('h3', { hasText: 'props' }) });
      await batch.waitFor({ timeout: TIMEOUT_MS });
      await batch.locator('details.batch-assets summary').click();
      const assets = batch.locator('details.batch-assets li');
      const anaCompleted = () => batch.locator('details.batch-assets li[data-phase="completed"]').count();
      // A moment later: A's batch holds the HPC machine.
      await batch.locator('details.batch-assets li[data-phase="running"]').first().waitFor({ timeout: TIMEOUT_MS });

      // Every place in the line B's card shows, as it changes ('' while it shows none).
      await ben.evaluate(() => {
        const seen: string[] = [];
        (window as unknown as { placesSeen: string[] }).placesSeen = seen;
        new MutationObserver(() => {
          const node = document.querySelector<HTMLElement>('article.job .queue-place');
          const text = !node || node.hidden ? '' : (node.textContent ?? '');
          if (seen.at(-1) !== text) seen.push(text);
        }).observe(document.getElementById('job-list')!, { subtree: true, childList: true, attributes: true, characterData: true });
      });
      await ben.locator('#file-input').setInputFiles([TWO_CUBES]);
      await ben.locator('#upload-queue li[data-asset]').first().waitFor();
      await ben.locator('#upload-button').click();
      const benJob = ben.locator('article.job', { has: ben.locator('h3', { hasText: 'TwoCubes.glb' }) });
      await benJob.waitFor({ timeout: TIMEOUT_MS });
      const anaDoneAtBenStart = await anaCompleted();
      await benJob.and(ben.locator('[data-phase="completed"]')).waitFor({ timeout: TIMEOUT_MS });
      const anaDoneAtBenEnd = await anaCompleted();
      const places = await ben.evaluate(() => (window as unknown as { placesSeen: string[] }).placesSeen);
      console.log(
        `[two-artists] A's assets completed when B submitted: ${anaDoneAtBenStart}, when B completed: ${anaDoneAtBenEnd}; places B saw: ${JSON.stringify(places)}`,
      );

      // B did not wait behind A's folder: B's six stages took turns with A's, and most of A's 30 were still to come.
      expect(anaDoneAtBenEnd).toBeLessThan(FOLDER_ASSETS / 2);
      // Honest places: a number of jobs ahead, never more than A's batch has running (4 at a time), only
      // counting down while one stage waits, and gone once the machine took the last one.
      for (const run of placesPerWait(places)) {
        for (const ahead of run) {
          expect(ahead).toBeGreaterThanOrEqual(0);
          expect(ahead).toBeLessThanOrEqual(4);
        }
        for (let i = 1; i < run.length; i++) expect(run[i]!).toBeLessThanOrEqual(run[i - 1]!);
      }
      expect(places.at(-1) ?? '').toBe('');
      // B sees only B's job.
      expect(await ben.locator('article.job').count()).toBe(1);

      // A's folder is one batch: one card, its 30 assets listed in it, all completed in the end.
      await expect.poll(anaCompleted, { timeout: TIMEOUT_MS, interval: 1000 }).toBe(FOLDER_ASSETS);
      expect(await assets.count()).toBe(FOLDER_ASSETS);
      expect(await ana.locator('article.job').count()).toBe(1);
      // The batch closes after its last asset's job does (it waits for that job's result): a moment later.
      await expect.poll(() => batch.getAttribute('data-phase'), { timeout: TIMEOUT_MS, interval: 250 }).toBe('completed');
    },
    TIMEOUT_MS,
  );
});
