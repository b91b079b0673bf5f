import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveSettings } from '../common/pipeline.js';
import type { StageJob } from './stage-job.js';
import { DEFAULT_ASSET_LIMITS } from '../common/config.js';
import { aliveStageThreads, busyStageThreads, IDLE_MS, MAX_STAGES_PER_THREAD, runStageThread, StageFailedError } from './stage-thread.js';
import { SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

describe('stage threads', () => {
  let fx: PipelineFixture;
  let job: StageJob;
  beforeAll(async () => {
    fx = await startPipelineFixture();
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    const jobId = 'asset-alice-thread-reuse';
    const scratch = await fx.scratch.openStage(jobId, 'inspect', input.files);
    job = {
      stage: 'inspect',
      jobId,
      assetName: input.assetName,
      mainFile: input.assetName,
      fileNames: input.files.map((f) => f.name),
      inputDir: scratch.inputDir,
      workDir: scratch.workDir,
      outputDir: '',
      settings: resolveSettings(input.options),
    };
  });
  afterAll(async () => {
    await fx?.stop();
  });

  /** Runs one inspect stage and resolves to the thread it ran on. */
  async function stageOn(): Promise<number> {
    let thread = -1;
    await runStageThread(
      job,
      { onStart: () => (thread = busyStageThreads()[0]!), onProgress: () => undefined },
      new AbortController().signal,
    );
    return thread;
  }

  it('reuses a thread for its stages, and boots its successor during its last one', async () => {
    const first = await stageOn();
    for (let stage = 2; stage < MAX_STAGES_PER_THREAD; stage++) expect(await stageOn()).toBe(first);
    // Before the last stage only the first thread exists: nothing is booted early.
    expect(aliveStageThreads()).toEqual([first]);
    expect(await stageOn()).toBe(first);
    // The last stage started the successor; the retired thread is on its way out.
    const successor = aliveStageThreads().find((id) => id !== first);
    expect(successor).toBeDefined();
    expect(await stageOn()).toBe(successor);
  });

  it('never hands a stage the idle thread it is ending', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const parked = await stageOn();
      // The idle timeout ends the parked thread; the next stage, arriving before it has exited, gets a new one.
      vi.advanceTimersByTime(IDLE_MS);
      const next = await stageOn();
      expect(next).not.toBe(parked);
      expect(aliveStageThreads()).toContain(next);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails at once, not per attempt, when a library kills the thread with an error that recurs for the input', async () => {
    // 50,000 nested nodes overflow glTF-Validator's stack, thrown from a timer: the thread dies. The node-depth
    // limit normally refuses this first; here it is lifted to reach the crash.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-thread-crash-'));
    try {
      const nodes = Array.from({ length: 50_000 }, (_, i) => (i < 49_999 ? { children: [i + 1] } : {}));
      writeFileSync(path.join(dir, 'deep.gltf'), JSON.stringify({ asset: { version: '2.0' }, nodes, scenes: [{ nodes: [0] }] }));
      const deep: StageJob = {
        ...job,
        assetName: 'deep.gltf',
        mainFile: 'deep.gltf',
        fileNames: ['deep.gltf'],
        inputDir: dir,
        workDir: dir,
        limits: { ...DEFAULT_ASSET_LIMITS, nodeDepth: 1_000_000 },
      };
      const err = await runStageThread(deep, { onStart: () => undefined, onProgress: () => undefined }, new AbortController().signal).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StageFailedError);
      expect(err).toMatchObject({ failureType: 'UNSUPPORTED_ASSET', details: [{ code: 'NESTING_TOO_DEEP' }] });
      // The next stage gets a healthy thread.
      expect(await stageOn()).toBeGreaterThanOrEqual(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
