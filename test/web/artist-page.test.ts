import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { jobKeys } from '../../common/job-log.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { placesPerWait } from '../helpers/queue-places.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

const SCREENSHOTS = path.join(PROJECT_ROOT, 'test-results', 'web');
const TWO_CUBES = path.join(SHARED_ASSETS, 'TwoCubes.glb');
const DAMAGED_HELMET = path.join(SHARED_ASSETS, 'DamagedHelmet.glb');
const BOX_TEXTURED = ['BoxTextured.gltf', 'BoxTextured0.bin', 'CesiumLogoFlat.png'].map((f) => path.join(SHARED_ASSETS, 'BoxTextured', f));
/** Bounds a wait for a job (the full pipeline on a shared 2-core machine); not a performance assertion. */
const JOB_TIMEOUT_MS = 180_000;

describe('web page for artists: Chromium against the real stack', () => {
  let stack: TestStack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [stack, browser] = await Promise.all([startStack(), launchChromium({ webgl: true })]);
  });
  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await browser?.close();
    await stack?.stop();
  });

  /** A fresh browser profile (its own localStorage) on a laptop-sized screen, signed in through the page. */
  async function signIn(user: string, screenshot?: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 820 }, acceptDownloads: true });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[page ${user}] ${err.message}`));
    await page.goto(stack.apiUrl);
    await page.getByLabel('User name').fill(user);
    if (screenshot) await shot(page, screenshot);
    // Enter in the field signs in: the form works from the keyboard.
    await page.getByLabel('User name').press('Enter');
    await page.getByText(`Signed in as ${user}`).waitFor();
    await page.locator('#connection[data-state="online"]').waitFor();
    return page;
  }

  const card = (page: Page, assetName: string): Locator => page.locator('article.job', { has: page.locator('h3', { hasText: assetName }) });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

  async function waitForPhase(job: Locator, phase: string, timeout = JOB_TIMEOUT_MS): Promise<void> {
    await job.and(job.page().locator(`[data-phase="${phase}"]`)).waitFor({ timeout });
  }

  async function uploadThroughPage(page: Page, files: string[]): Promise<void> {
    await page.locator('#file-input').setInputFiles(files);
    await page
      .locator('#upload-queue li[data-asset]')
      .nth(files.length - 1)
      .waitFor();
    await page.locator('#upload-button').click();
  }

  /** Distinct colours in a canvas (sampled): an empty scene is one flat background colour, a drawn model many. */
  const distinctColours = (canvas: Locator) =>
    canvas.evaluate((node) => {
      const source = node as HTMLCanvasElement;
      const copy = document.createElement('canvas');
      copy.width = source.width;
      copy.height = source.height;
      const g = copy.getContext('2d')!;
      g.drawImage(source, 0, 0);
      const data = g.getImageData(0, 0, copy.width, copy.height).data;
      const distinct = new Set<number>();
      for (let i = 0; i < data.length; i += 4 * 5) distinct.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
      return distinct.size;
    });

  async function stopHpcWorker(): Promise<void> {
    await stack.processes.get('worker:hpc')?.stop();
  }

  /** What a card showed over time, recorded in the page as it changed. */
  interface CardHistory {
    percents: number[];
    phases: string[];
    /** Labels of the cancel button while it was disabled. */
    disabledCancel: string[];
  }

  /** Starts recording every card's percent, phase and cancel button in the page, on every DOM change. */
  async function recordCards(page: Page): Promise<void> {
    await page.evaluate(() => {
      const seen: Record<string, CardHistory> = {};
      (window as unknown as { cardHistory: typeof seen }).cardHistory = seen;
      const push = <T>(list: T[], value: T) => list.at(-1) !== value && list.push(value);
      new MutationObserver(() => {
        for (const job of Array.from(document.querySelectorAll<HTMLElement>('article.job'))) {
          const h = (seen[job.dataset.jobId!] ??= { percents: [], phases: [], disabledCancel: [] });
          push(h.percents, job.querySelector('progress')?.value ?? -1);
          push(h.phases, job.dataset.phase ?? '');
          const cancel = job.querySelector<HTMLButtonElement>('button.danger');
          if (cancel && !cancel.hidden && cancel.disabled) push(h.disabledCancel, cancel.textContent ?? '');
        }
      }).observe(document.getElementById('job-list')!, { subtree: true, childList: true, attributes: true, characterData: true });
    });
  }

  const recorded = (page: Page) => page.evaluate(() => (window as unknown as { cardHistory: Record<string, CardHistory> }).cardHistory);

  it('signs in, uploads TwoCubes and DamagedHelmet in one pick, and shows both jobs move to completed', async () => {
    const page = await signIn('alice', '00-sign-in');
    await page.getByText('No jobs yet').waitFor();
    await shot(page, '01-signed-in');

    // Record every state each card shows, to prove the bars move rather than jump in at the end.
    await recordCards(page);

    await page.locator('#file-input').setInputFiles([TWO_CUBES, DAMAGED_HELMET]);
    await page.locator('#upload-queue li[data-asset="DamagedHelmet.glb"]').waitFor();
    await expect(page.locator('#upload-button').textContent()).resolves.toBe('Upload 2 assets');
    await expect(page.locator('#size-limit').textContent()).resolves.toMatch(/Up to 2\.0 GB per asset/);
    await shot(page, '02-ready-to-upload');
    await page.locator('#upload-button').click();

    const cubes = card(page, 'TwoCubes.glb');
    const helmet = card(page, 'DamagedHelmet.glb');
    await Promise.all([waitForPhase(cubes, 'completed'), waitForPhase(helmet, 'completed')]);
    await shot(page, '03-completed');

    const seen = await recorded(page);
    for (const job of [cubes, helmet]) {
      const jobId = (await job.getAttribute('data-job-id'))!;
      expect(jobId).toMatch(/^asset-alice-/);
      const percents = seen[jobId]!.percents;
      expect(percents[0]).toBeLessThan(100);
      expect(percents.at(-1)).toBe(100);
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      const stages = job.locator('.stages li');
      expect(await stages.count()).toBeGreaterThan(0);
      expect(await job.locator('.stages li[data-state="done"]').count()).toBe(await stages.count());
      expect(await job.locator('.badge').first().textContent()).toBe('Completed');
    }
    // Newest first: both came from one pick, DamagedHelmet second, so it is on top.
    await expect(page.locator('article.job h3').first().textContent()).resolves.toBe('DamagedHelmet.glb');

    // The result view draws the uploaded original with three.js (WebGL in software here).
    await helmet.getByRole('button', { name: 'Result & downloads' }).click();
    const dialog = page.locator('#result-dialog');
    await dialog.getByRole('heading', { name: 'Before and after' }).waitFor();
    // Each pane is marked ready only once its own model is drawn (a failed load leaves it unmarked).
    const original = dialog.locator('canvas[aria-label^="Original"][data-ready="true"]');
    const optimised = dialog.locator('canvas[aria-label^="Optimised"][data-ready="true"]');
    await Promise.all([original.waitFor({ timeout: 60_000 }), optimised.waitFor({ timeout: 60_000 })]);
    await original.screenshot({ path: 'test-results/web/04a-viewer-original.png' });
    await optimised.screenshot({ path: 'test-results/web/04b-viewer-optimised.png' });
    // An empty scene is one flat background colour; the textured helmet gives hundreds, in both panes.
    expect(await distinctColours(original)).toBeGreaterThan(50);
    expect(await distinctColours(optimised)).toBeGreaterThan(50);
    await expect(dialog.locator('table').first().textContent()).resolves.toContain('Original');
    await shot(page, '04-result-view');
    await page.keyboard.press('Escape');
  }, 400_000);

  it('shows why a broken asset failed, in words an artist understands', async () => {
    const page = await signIn('carol');
    const broken = path.join(stack.dataDir, 'NotAModel.glb');
    writeFileSync(broken, 'this is a text file, not a model');
    await uploadThroughPage(page, [broken]);
    const job = card(page, 'NotAModel.glb');
    await waitForPhase(job, 'failed');
    const problem = job.getByRole('alert');
    await expect(problem.textContent()).resolves.toContain("This asset can't be processed");
    await expect(problem.textContent()).resolves.toContain('export it again');
    // Said once, not once as the summary and again as a finding.
    const summary = (await problem.locator('p').first().textContent())!.split('. ')[0]!;
    expect((await job.textContent())!.split(summary).length - 1).toBe(1);
    // A broken file fails the same way every time: no Retry.
    expect(await job.getByRole('button', { name: 'Retry' }).isVisible()).toBe(false);
    await shot(page, '05-failed-asset');
  });

  it('cancels a running job: "cancelling…" until the server confirms, then cancelled', async () => {
    const page = await signIn('alice');
    // With the HPC worker away the job waits for it, which keeps it running long enough to cancel.
    await stopHpcWorker();
    let workerBack = false;
    try {
      await uploadThroughPage(page, [TWO_CUBES]);
      const job = page.locator('article.job[data-phase="queued"], article.job[data-phase="running"]').first();
      await job.waitFor();
      const jobId = (await job.getAttribute('data-job-id'))!;
      const thisJob = page.locator(`article.job[data-job-id="${jobId}"]`);
      await expect(thisJob.locator('.stage-message').textContent()).resolves.toContain('Waiting for the HPC machine');

      await recordCards(page);
      const cancelled = page.waitForResponse((r) => r.url().endsWith(`/api/jobs/${jobId}/cancel`));
      await thisJob.getByRole('button', { name: 'Cancel' }).click();
      // Best effort: the server may confirm before the screenshot; the recording below is the proof.
      await shot(page, '06-cancelling');
      expect((await cancelled).status()).toBe(202);
      // The cancel is recorded; cleanup may need the HPC machine, so it comes back before the wait.
      await stack.startComponent('worker:hpc');
      workerBack = true;
      await waitForPhase(thisJob, 'cancelled');
      expect(await thisJob.getByRole('button', { name: 'Retry' }).isVisible()).toBe(true);
      expect(await thisJob.getByRole('button', { name: /Cancel/ }).isVisible()).toBe(false);
      // It said "Cancelling…" (disabled) from the click until the server confirmed.
      const history = (await recorded(page))[jobId]!;
      expect(history.disabledCancel).toEqual(['Cancelling…']);
      expect(history.phases.slice(-2)).toEqual(['cancelling', 'cancelled']);
      await shot(page, '07-cancelled');
    } finally {
      if (!workerBack) await stack.startComponent('worker:hpc');
    }
  }, 240_000);

  it('keeps a job live through an API restart and a page reload, resuming from lastSeq', async () => {
    const page = await signIn('alice');
    const sent: string[] = [];
    page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
    await stopHpcWorker();
    let jobId = '';
    try {
      await uploadThroughPage(page, [TWO_CUBES]);
      const waiting = page.locator('article.job[data-phase="running"], article.job[data-phase="queued"]').first();
      await waiting.waitFor();
      jobId = (await waiting.getAttribute('data-job-id'))!;
      const job = page.locator(`article.job[data-job-id="${jobId}"]`);
      // The workflow's "started" event has arrived, so the page holds a sequence number for the job.
      await waitForPhase(job, 'running');

      // The API goes away: the page says it is offline and keeps trying.
      await stack.processes.get('api')!.stop();
      await page.locator('#connection[data-state="offline"]').waitFor({ timeout: 30_000 });
      await expect(page.locator('#connection').textContent()).resolves.toMatch(/Offline/);
      await shot(page, '08-offline');
      sent.length = 0;
      await stack.startComponent('api');
      await page.locator('#connection[data-state="online"]').waitFor({ timeout: 60_000 });
      // Reconnected on its own, and asked for the job's messages after the last one it had.
      await waitFor(
        () =>
          sent.some((raw) => {
            const m = JSON.parse(raw) as { type: string; jobId?: string; lastSeq?: number };
            return m.type === 'subscribe' && m.jobId === jobId && (m.lastSeq ?? 0) > 0;
          }),
        { timeoutMs: 10_000, what: `a subscribe with lastSeq for ${jobId}; sent ${sent.join(' ')}` },
      );

      // A reload keeps the artist signed in and the job on the list, still running.
      await page.reload();
      await page.getByText('Signed in as alice').waitFor();
      await page.locator('#connection[data-state="online"]').waitFor();
      await waitForPhase(job, 'running');
      await shot(page, '09-reloaded-mid-job');
    } finally {
      await stack.startComponent('worker:hpc');
    }
    // The HPC machine is back: the same card goes on to completed without another reload.
    await waitForPhase(page.locator(`article.job[data-job-id="${jobId}"]`), 'completed');
  }, 300_000);

  it('shows each artist only their own jobs, in two browser contexts at once', async () => {
    const [alice, bob] = await Promise.all([signIn('alice'), signIn('bob')]);
    await bob.getByText('No jobs yet').waitFor();
    const aliceJobsBefore = await alice.locator('article.job').count();
    expect(aliceJobsBefore).toBeGreaterThan(0);

    await uploadThroughPage(bob, [TWO_CUBES]);
    await waitForPhase(card(bob, 'TwoCubes.glb'), 'completed');
    await shot(bob, '10-second-user');

    const bobIds = await bob.locator('article.job').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.jobId!));
    expect(bobIds).toHaveLength(1);
    expect(bobIds[0]).toMatch(/^asset-bob-/);
    // Alice's live page got nothing of Bob's, and a fresh load of hers lists none either.
    const aliceIds = await alice.locator('article.job').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.jobId!));
    expect(aliceIds).toHaveLength(aliceJobsBefore);
    expect(aliceIds.every((id) => id.startsWith('asset-alice-'))).toBe(true);
    await alice.reload();
    await alice.locator('article.job').first().waitFor();
    expect(await alice.locator('article.job').count()).toBe(aliceJobsBefore);

    // Signing out forgets the token: a reload shows the sign-in form, not Alice's jobs.
    await alice.getByRole('button', { name: 'Sign out' }).click();
    await alice.getByLabel('User name').waitFor();
    await alice.reload();
    await alice.getByLabel('User name').waitFor();
    expect(await alice.locator('article.job').count()).toBe(0);
    expect(await alice.evaluate(() => localStorage.length)).toBe(0);
  });

  it('follows a job whose Redis keys were lost mid-job: a reset snapshot, then the new seqs from 1', async () => {
    const page = await signIn('grace');
    const received: string[] = [];
    page.on('websocket', (ws) => ws.on('framereceived', (frame) => received.push(String(frame.payload))));
    // Every seq the card shows, recorded in the page on each change.
    await page.evaluate(() => {
      const seqs: Record<string, number[]> = {};
      (window as unknown as { cardSeqs: typeof seqs }).cardSeqs = seqs;
      new MutationObserver(() => {
        for (const job of Array.from(document.querySelectorAll<HTMLElement>('article.job'))) {
          const list = (seqs[job.dataset.jobId!] ??= []);
          const seq = Number(job.dataset.seq);
          if (list.at(-1) !== seq) list.push(seq);
        }
      }).observe(document.getElementById('job-list')!, { subtree: true, attributes: true, attributeFilter: ['data-seq'] });
    });
    const cardSeqs = () => page.evaluate(() => (window as unknown as { cardSeqs: Record<string, number[]> }).cardSeqs);

    // The HPC worker is away, so the job holds at its first stage with a few workflow events published.
    await stopHpcWorker();
    let workerBack = false;
    const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      await uploadThroughPage(page, [TWO_CUBES]);
      const waiting = page.locator('article.job').first();
      await waiting.waitFor();
      const jobId = (await waiting.getAttribute('data-job-id'))!;
      const job = page.locator(`article.job[data-job-id="${jobId}"]`);
      await waitForPhase(job, 'running');
      // `started` then `stage-started`: the page holds seq 2 or more.
      const before = await waitFor(
        async () => {
          const seq = Number(await job.getAttribute('data-seq'));
          return seq >= 2 && seq;
        },
        { timeoutMs: 30_000, what: `the page to hold seq 2 for ${jobId}` },
      );

      // Redis loses the job's keys while the API is away; the page comes back with lastSeq = before.
      await stack.processes.get('api')!.stop();
      const keys = jobKeys(jobId);
      expect(await redis.del(keys.seq, keys.state, keys.log)).toBeGreaterThan(0);
      received.length = 0;
      await stack.startComponent('api');
      await page.locator('#connection[data-state="online"]').waitFor({ timeout: 60_000 });

      // The server says it holds less than the page asked for, and the page follows it down.
      await waitFor(
        () =>
          received.some((raw) => {
            const m = JSON.parse(raw) as { type: string; jobId?: string; reset?: boolean };
            return m.type === 'snapshot' && m.jobId === jobId && m.reset === true;
          }),
        { timeoutMs: 30_000, what: `a reset snapshot for ${jobId}; received ${received.join(' ')}` },
      );
      await waitFor(async () => Number(await job.getAttribute('data-seq')) < before, {
        timeoutMs: 10_000,
        what: `the card to drop to the reset snapshot's seq (below ${before})`,
      });
      await expect(job.locator('.stage-message').textContent()).resolves.toContain('Waiting for the HPC machine');

      // The HPC machine comes back: the job's new messages start again at seq 1, and the page shows them.
      await stack.startComponent('worker:hpc');
      workerBack = true;
      await waitForPhase(job, 'completed');
      const seqs = (await cardSeqs())[jobId]!;
      const afterReset = seqs.slice(seqs.indexOf(before) + 1);
      // Below the old seq: a page ignoring seq <= lastSeq would never have shown these.
      expect(
        afterReset.some((seq) => seq > 0 && seq < before),
        `seqs ${seqs.join(',')} before ${before}`,
      ).toBe(true);
      expect(afterReset).toEqual([...afterReset].sort((a, b) => a - b));
      expect(await job.locator('.stages li[data-state="done"]').count()).toBe(await job.locator('.stages li').count());
      await shot(page, '13-followed-reset');
    } finally {
      redis.disconnect();
      if (!workerBack) await stack.startComponent('worker:hpc');
    }
  }, 300_000);

  it('tells a waiting artist how many jobs are ahead of theirs, counting down as the HPC machine takes them', async () => {
    const token = stack.tokenFor('gina');
    await stopHpcWorker();
    const ids: string[] = [];
    let workerBack = false;
    try {
      // Three jobs while no machine is up: all three wait, in the order they were submitted. Each is in
      // the line before the next is submitted: the first stages of jobs started within the same moment
      // reach the HPC queue in whichever order their workflows run, and the places follow that order.
      const page = await signIn('gina');
      const place = (jobId: string) => page.locator(`article.job[data-job-id="${jobId}"] .queue-place`);
      for (let i = 0; i < 3; i++) {
        const res = await uploadAsset(stack.apiUrl, token, [TWO_CUBES], { options: JSON.stringify({}) });
        const { jobId } = (await res.json()) as { jobId: string };
        ids.push(jobId);
        await place(jobId).filter({ hasText: 'Waiting for the HPC machine' }).waitFor();
      }
      await place(ids[2]!).filter({ hasText: 'Waiting for the HPC machine: 2 jobs ahead of yours' }).waitFor();
      await place(ids[0]!).filter({ hasText: 'Waiting for the HPC machine: yours is next' }).waitFor();
      await shot(page, '14-queue-place');
      // Every place the third job's card shows from here on, as it changes.
      await page.evaluate((jobId) => {
        const seen: string[] = [];
        (window as unknown as { placesSeen: string[] }).placesSeen = seen;
        const node = document.querySelector(`article.job[data-job-id="${jobId}"] .queue-place`)!;
        const note = () => {
          const text = (node as HTMLElement).hidden ? '' : (node.textContent ?? '');
          if (seen.at(-1) !== text) seen.push(text);
        };
        note();
        new MutationObserver(note).observe(node, { attributes: true, childList: true, characterData: true, subtree: true });
      }, ids[2]!);
      await stack.startComponent('worker:hpc');
      workerBack = true;
      await waitForPhase(page.locator(`article.job[data-job-id="${ids[2]!}"]`), 'completed');
      const seen = await page.evaluate(() => (window as unknown as { placesSeen: string[] }).placesSeen);
      // Each stage of the job waits in turn; while one waits its place only goes down (one artist's own
      // later stages queue behind their waiting jobs), and it goes away when a machine takes the stage.
      const waits = placesPerWait(seen);
      expect(waits[0]![0]).toBe(2);
      for (const run of waits) for (let i = 1; i < run.length; i++) expect(run[i]!).toBeLessThanOrEqual(run[i - 1]!);
      expect(seen.at(-1)).toBe('');
    } finally {
      if (!workerBack) await stack.startComponent('worker:hpc');
    }
  }, 240_000);

  it('turns a picked folder of assets into one batch, shown as one card with a collapsible list of its assets', async () => {
    const folder = path.join(mkdtempSync(path.join(os.tmpdir(), 'asset-farm-folder-')), 'props');
    mkdirSync(folder);
    for (const name of ['crate-a.glb', 'crate-b.glb', 'crate-c.glb']) copyFileSync(TWO_CUBES, path.join(folder, name));
    const page = await signIn('hugo');
    await page.locator('#folder-input').setInputFiles(folder);
    await page.locator('#upload-queue li[data-asset]').nth(2).waitFor();
    await page.locator('#upload-button').click();
    const batch = page.locator('article.job[data-kind="batch"]', { has: page.locator('h3', { hasText: 'props' }) });
    await batch.waitFor({ timeout: JOB_TIMEOUT_MS });
    await batch.locator('details.batch-assets summary').click();
    await waitForPhase(batch, 'completed');
    // Every asset listed in the batch, each completed; none of them a card of its own.
    const assets = batch.locator('details.batch-assets li');
    await expect.poll(() => assets.count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(() => batch.locator('details.batch-assets li[data-phase="completed"]').count(), { timeout: 60_000 }).toBe(3);
    expect((await assets.locator('.asset-name').allTextContents()).sort()).toEqual(['crate-a.glb', 'crate-b.glb', 'crate-c.glb']);
    expect(await page.locator('article.job').count()).toBe(1);
    expect(await batch.locator('.bars progress').first().getAttribute('value')).toBe('100');
    await shot(page, '15-folder-batch');
  }, 300_000);

  /** When the retry of jobId was asked for, as the API lists it (the workflow's memo). */
  async function retryMemoAt(jobId: string, token: string): Promise<string> {
    const res = await fetch(`${stack.apiUrl}/api/jobs`, { headers: { authorization: `Bearer ${token}` } });
    const { jobs } = (await res.json()) as { jobs: { retryOf: string | null; retry: { at: string } | null }[] };
    return jobs.find((j) => j.retryOf === jobId)!.retry!.at;
  }

  it('retries a cancelled job from the page and it completes', async () => {
    const token = stack.tokenFor('dave');
    await stopHpcWorker();
    let jobId: string;
    try {
      const res = await uploadAsset(stack.apiUrl, token, [TWO_CUBES], { options: JSON.stringify({ priority: 'background' }) });
      jobId = ((await res.json()) as { jobId: string }).jobId;
      await fetch(`${stack.apiUrl}/api/jobs/${jobId}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    } finally {
      await stack.startComponent('worker:hpc');
    }
    await waitFor(
      async () =>
        (
          (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
            status: string;
          }
        ).status === 'CANCELLED',
      { timeoutMs: 60_000, what: 'the job to be cancelled' },
    );
    const page = await signIn('dave');
    const job = card(page, 'TwoCubes.glb');
    await waitForPhase(job, 'cancelled');
    const priorityBadge = (of: Locator) => of.locator('.badge.priority:not([hidden])');
    await priorityBadge(job).waitFor();
    expect(await priorityBadge(job).textContent()).toBe('Background');
    await job.getByRole('button', { name: 'Retry' }).click();
    // The retry is a new job of the same asset: its card says what it retries, who asked and when (the
    // workflow's memo), and keeps the priority.
    const retried = page.locator('article.job').filter({ hasText: `Retry of ${jobId!} by dave at ` });
    await waitForPhase(retried, 'completed');
    const line = (await retried.locator('.retry-of').textContent())!;
    // The time shown is the retry's, to the minute, in the browser's clock.
    const shownAt = line.slice(`Retry of ${jobId!} by dave at `.length);
    const memoAt = await page.evaluate(
      (at) => new Date(at).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }),
      await retryMemoAt(jobId!, token),
    );
    expect(shownAt).toBe(memoAt);
    await priorityBadge(retried).waitFor();
    expect(await priorityBadge(retried).textContent()).toBe('Background');
    await shot(page, '11-retried');
  }, 240_000);

  it('downloads an output GLB and the zip from the result view', async () => {
    const page = await signIn('erin');
    await uploadThroughPage(page, [TWO_CUBES]);
    const job = card(page, 'TwoCubes.glb');
    await waitForPhase(job, 'completed');
    await job.getByRole('button', { name: 'Result & downloads' }).click();
    const dialog = page.locator('#result-dialog');
    const glbButton = dialog.locator('button[data-output$=".glb"]').first();
    await glbButton.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), glbButton.click()]);
    const bytes = readFileSync((await download.path())!);
    // A GLB: magic "glTF", version 2, total length in the header, then a JSON chunk.
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('glTF');
    expect(bytes.readUInt32LE(4)).toBe(2);
    expect(bytes.readUInt32LE(8)).toBe(bytes.length);
    expect(bytes.readUInt32LE(16)).toBe(0x4e4f534a);
    const json = JSON.parse(bytes.subarray(20, 20 + bytes.readUInt32LE(12)).toString('utf8')) as { asset: { version: string } };
    expect(json.asset.version).toBe('2.0');

    const [zip] = await Promise.all([page.waitForEvent('download'), dialog.locator('button[data-output="outputs.zip"]').click()]);
    expect(
      readFileSync((await zip.path())!)
        .subarray(0, 2)
        .toString('latin1'),
    ).toBe('PK');
  }, 180_000);

  it('result view shows before/after per LOD, warnings, and the optimised model drawn', async () => {
    const token = stack.tokenFor('frank');
    const res = await uploadAsset(stack.apiUrl, token, [DAMAGED_HELMET]);
    const { jobId } = (await res.json()) as { jobId: string };
    const detail = await waitFor(
      async () => {
        const body = (await (
          await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } })
        ).json()) as {
          status: string;
          result: { package?: unknown } | null;
        };
        return body.status !== 'RUNNING' && body;
      },
      { timeoutMs: JOB_TIMEOUT_MS, what: 'the DamagedHelmet job to finish' },
    );
    expect(detail.status).toBe('COMPLETED');
    expect(detail.result?.package).toBeDefined();

    const page = await signIn('frank');
    const job = card(page, 'DamagedHelmet.glb');
    await waitForPhase(job, 'completed');
    await job.getByRole('button', { name: 'Result & downloads' }).click();
    const dialog = page.locator('#result-dialog');
    const table = dialog.locator('table').first();
    await table.waitFor();
    const text = (await table.textContent())!;
    expect(text).toContain('Optimised (LOD0)');
    expect(text).toMatch(/LOD1/);
    // Lower LODs carry smaller textures: the before/after table's Textures row falls from LOD0 to LOD2,
    // and the textures table gives each LOD's copy (√ratio of 2048: 1448, 1024).
    const texturesRow = await table
      .locator('tbody tr')
      .filter({ has: page.locator('th', { hasText: 'Textures' }) })
      .locator('td')
      .allTextContents();
    const bytesOf = (cell: string) => {
      const m = /\(([\d.]+) (B|KB|MB|GB)\)/.exec(cell);
      return m ? Number(m[1]) * 1024 ** ['B', 'KB', 'MB', 'GB'].indexOf(m[2]!) : NaN;
    };
    // Original, LOD0, LOD1, LOD2.
    const sizes = texturesRow.map(bytesOf);
    expect(sizes).toHaveLength(4);
    expect(sizes[2]!).toBeLessThan(sizes[1]!);
    expect(sizes[3]!).toBeLessThan(sizes[2]!);
    expect(await dialog.getByText(/LOD1: 1448×1448/).count()).toBe(5);
    expect(await dialog.getByText(/LOD2: 1024×1024/).count()).toBe(5);
    await dialog.getByRole('heading', { name: 'Validator warnings' }).waitFor();
    // Each converted texture says how closely it matches its upload (the report's fidelity, not only in the JSON).
    const fidelity = dialog.locator('td[data-fidelity]');
    expect(await fidelity.count()).toBeGreaterThan(0);
    for (const text of await fidelity.allTextContents()) expect(text).toMatch(/kept as uploaded|identical|max error \d+\/255/);
    // Uploaded from outside this page: the original comes from the API's inputs route, both panes drawn for real.
    const optimised = dialog.locator('canvas[aria-label^="Optimised"][data-ready="true"]');
    await optimised.waitFor({ timeout: 60_000 });
    expect(await distinctColours(optimised)).toBeGreaterThan(50);
    const original = dialog.locator('canvas[aria-label^="Original"][data-ready="true"]');
    await original.waitFor({ timeout: 60_000 });
    expect(await distinctColours(original)).toBeGreaterThan(50);
    expect(await dialog.locator('#lod-select option').count()).toBeGreaterThan(1);
    await shot(page, '12-result-full');
  }, 180_000);

  it('draws a KTX2 (KHR_texture_basisu) output with the Basis transcoder the app serves', async () => {
    const token = stack.tokenFor('grace');
    const res = await uploadAsset(stack.apiUrl, token, BOX_TEXTURED, {
      options: JSON.stringify({ preset: 'game-ready', textureFormat: 'ktx2' }),
    });
    expect(res.status).toBe(202);
    const page = await signIn('grace');
    const transcoder: { url: string; status: number }[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/basis/')) transcoder.push({ url: new URL(r.url()).pathname, status: r.status() });
    });
    const job = card(page, 'BoxTextured.gltf');
    await waitForPhase(job, 'completed');
    await job.getByRole('button', { name: 'Result & downloads' }).click();
    const dialog = page.locator('#result-dialog');
    const optimised = dialog.locator('canvas[aria-label^="Optimised"][data-ready="true"]');
    await optimised.waitFor({ timeout: 60_000 });
    // The box is drawn with its logo texture: the logo's blue is on screen (a box without it is grey).
    const bluePixels = await optimised.evaluate((node) => {
      const copy = document.createElement('canvas');
      copy.width = (node as HTMLCanvasElement).width;
      copy.height = (node as HTMLCanvasElement).height;
      const g = copy.getContext('2d')!;
      g.drawImage(node as HTMLCanvasElement, 0, 0);
      const data = g.getImageData(0, 0, copy.width, copy.height).data;
      let blue = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 2]! > data[i]! + 60 && data[i + 2]! > data[i + 1]! + 20) blue++;
      return blue;
    });
    expect(bluePixels).toBeGreaterThan(500);
    expect(await dialog.getByText('could not be loaded').count()).toBe(0);
    // Fetched from the app itself, not a CDN.
    expect(transcoder).toEqual(
      expect.arrayContaining([
        { url: '/basis/basis_transcoder.js', status: 200 },
        { url: '/basis/basis_transcoder.wasm', status: 200 },
        // The transcoder worker, started from the app with its own CSP (a blob: worker would inherit the page's).
        { url: '/basis/ktx2-worker.js', status: 200 },
      ]),
    );
    await shot(page, '13-result-ktx2');
  }, 180_000);
});
