import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../common/pipeline.js';
import type { StageJob } from './stage-job.js';
import { aliveStageThreads, busyStageThreads, MAX_STAGES_PER_THREAD, runStageThread } from './stage-thread.js';
import { SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

describe('stage threads', () => {
  let fx: PipelineFixture;
  let job: StageJob;
  beforeAll(async () => {
    fx = await startPipelineFixture();
    const input = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    const jobId = 'asset-alice-thread-reuse';
    job = {
      stage: 'inspect',
      jobId,
      assetName: input.assetName,
      mainFile: input.assetName,
      fileNames: input.files.map((f) => f.name),
      inputDir: await fx.storage.materializeInputs(jobId, input.files),
      workDir: await fx.storage.workDir(jobId),
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
});
