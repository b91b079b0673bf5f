import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadStageRegistry } from '../common/studio-stages.js';
import { waitFor } from '../scripts/lib/wait.js';
import type { ProcessAssetInput } from '../common/jobs.js';
import { BUILTIN_STAGES, planStages, ProcessSpec, ProcessStageResult, type StageDescriptor } from '../common/stages.js';
import { exampleStagesConfig, HAS_BPY, STAND_IN_TOOL as TOOL } from '../test/helpers/studio-stages.js';
import { requestFor, runIn, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

/** A process stage running the stand-in tool in `mode` on the upload, writing a file into the outputs. */
function toolStage(mode: string, extra: Partial<ProcessSpec> = {}): StageDescriptor {
  return {
    name: `tool-${mode}`,
    label: 'Running the tool on',
    activity: `studioStage.tool-${mode}`,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30 seconds',
    reads: ['upload'],
    writes: ['outputs'],
    result: ProcessStageResult,
    process: ProcessSpec.parse({
      command: '{node}',
      args: [TOOL, mode, '{upload}', '{outputDir}/{base}-tool.txt'],
      progress: { parser: 'fraction' },
      outputs: ['{outputDir}/{base}-tool.txt'],
      ...extra,
    }),
  };
}

const MODES = ['ok', 'invalid', 'crash', 'hang', ...Array.from({ length: 255 }, (_, i) => `exit-${i + 1}`)];
const STAGES = MODES.map((mode) => toolStage(mode));

/** True while the process exists and is not a zombie (killed, waiting only for its parent to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses: "1234 (node) S …".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('process stages: an external program as a pipeline stage', () => {
  let fx: PipelineFixture;
  let upload: ProcessAssetInput;
  beforeAll(async () => {
    fx = await startPipelineFixture({ stages: [...BUILTIN_STAGES, ...STAGES] });
    upload = await fx.upload([path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
  });
  afterAll(async () => {
    await fx?.stop();
  });

  /** Runs the stage `mode` for a new job whose plan holds it; resolves to its result or rejects with its failure. */
  function runTool(mode: string, jobId = `asset-alice-${mode}-${Math.random().toString(16).slice(2)}`) {
    const stage = STAGES.find((s) => s.name === `tool-${mode}`)!;
    const plan = planStages([...BUILTIN_STAGES, stage], { preset: 'game-ready', fileNames: ['TwoCubes.glb'] });
    const env = fx.envFor(jobId);
    const activity = fx.activities[stage.activity]!;
    const result = runIn(env, activity, requestFor({ ...upload, plan }));
    return { env, jobId, result };
  }

  it('reports the progress it parses from the program’s output and returns the files it wrote', async () => {
    const { jobId, result } = runTool('ok');
    const value = ProcessStageResult.parse(await result);
    expect(value.exitCode).toBe(0);
    expect(value.outputs).toEqual([{ name: 'TwoCubes-tool.txt', bytes: expect.any(Number) }]);
    // Every frame the tool printed reached the job's progress mirror, out of the 5 it announced.
    const catchUp = await fx.jobLog.catchUp(jobId, 0);
    const messages = catchUp.kind === 'replay' ? catchUp.messages : [];
    const frames = messages.flatMap((m) => (m.type === 'progress' && m.stage === 'tool-ok' && m.total === 5 ? [m.done] : []));
    expect(frames.at(-1)).toBe(5);
    expect(frames).toEqual([...frames].sort((a, b) => a - b));
    // Frames come 120 ms apart, slower than the mirror's rate: more than the last one is seen.
    expect(new Set(frames.filter((f) => f > 0)).size).toBeGreaterThanOrEqual(2);
  });

  it('fails without retry, with the end of its stderr, when the program exits with its bad-input code', async () => {
    const err = await runTool('invalid').result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure).toMatchObject({ type: 'INVALID_ASSET', nonRetryable: true });
    expect(failure.message).toContain('exit code 65');
    // The last lines, not the first: the 25 numbered lines scrolled the first ones out.
    expect(failure.message).toContain('is not a model this tool reads');
    expect(failure.message).toContain('parse error line 25');
    expect(failure.message).not.toContain('parse error line 1\n');
    // stdout is not stderr.
    expect(failure.message).not.toContain('reading ');
  });

  it('is retried, with the end of its stderr, when the program crashes', async () => {
    const err = (await runTool('crash').result.catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toMatchObject({ type: 'STAGE_PROCESS_FAILED', nonRetryable: false });
    expect(err.message).toMatch(/exited with code 3[\s\S]*trace line 25$/);
    expect(err.message).not.toMatch(/trace line 1$/m);
  });

  it('classifies every exit code: the declared bad-input codes are not retried, all others are', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 255 }), async (code) => {
        const err = (await runTool(`exit-${code}`).result.catch((e: unknown) => e)) as ApplicationFailure;
        expect(err).toBeInstanceOf(ApplicationFailure);
        if (code === 65) expect(err).toMatchObject({ type: 'INVALID_ASSET', nonRetryable: true });
        else expect(err).toMatchObject({ type: 'STAGE_PROCESS_FAILED', nonRetryable: false });
        expect(err.message).toContain(`exiting with ${code}`);
      }),
      { seed: 19, numRuns: 16, examples: [[65], [1], [255]] },
    );
  });

  it('kills the program’s whole process group on cancel, one that ignores SIGTERM included, within 2 s', async () => {
    const { env, jobId, result } = runTool('hang');
    const settled = result.then(
      () => 'completed',
      (e: unknown) => e,
    );
    // The tool prints its own and its grandchild's pid on stdout, which the progress mirror does not carry:
    // find the processes by their command line instead.
    const pids = await waitFor(
      async () => {
        const found = await processesRunning(TOOL, jobId);
        return found.length >= 1 ? found : undefined;
      },
      { timeoutMs: 20_000, what: 'the tool to start' },
    );
    const grandchildren = await waitFor(async () => ((await childrenOf(pids[0]!)).length ? await childrenOf(pids[0]!) : undefined), {
      timeoutMs: 20_000,
      what: 'the grandchild to start',
    });
    const all = [...pids, ...grandchildren];
    expect(all.filter(alive)).toEqual(all);
    env.cancel();
    // SIGTERM is ignored by both; the SIGKILL that follows within the grace reaches the whole group, within
    // 2 s of the cancel (the deadline runs from the cancel, not from the activity's end).
    await waitFor(() => (!all.some(alive) ? true : undefined), { timeoutMs: 2_000, what: 'no tool process left 2 s after the cancel' });
    const outcome = await settled;
    expect(outcome).toBeInstanceOf(Error);
    expect(outcome).not.toBeInstanceOf(ApplicationFailure);
    expect(all.filter(alive)).toEqual([]);
  });
});

/** Pids of processes whose command line holds all of `words` (from /proc, no `ps`). */
async function processesRunning(...words: string[]): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (words.every((w) => cmdline.includes(w)) && !cmdline.includes('setpriv')) pids.push(Number(entry));
  }
  return pids;
}

/** Pids of the direct children of `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const { readFile } = await import('node:fs/promises');
  const tasks = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return tasks.trim() ? tasks.trim().split(/\s+/).map(Number) : [];
}

describe(`the shipped studio stage example (${HAS_BPY ? 'Blender' : 'stand-in tool: no bpy here'})`, () => {
  let fx: PipelineFixture;
  const registry = loadStageRegistry(exampleStagesConfig());
  beforeAll(async () => {
    fx = await startPipelineFixture({ stages: registry });
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it('runs after packaging on DamagedHelmet’s optimised mesh and adds its report to the published outputs, keeping the GLBs', async () => {
    const upload = await fx.upload([path.join(SHARED_ASSETS, 'DamagedHelmet.glb')]);
    const plan = planStages(registry, { preset: 'game-ready', fileNames: upload.files.map((f) => f.name) });
    expect(plan.map((s) => s.name).slice(-2)).toEqual(['package', 'blender-report']);
    const jobId = `asset-alice-example-${Math.random().toString(16).slice(2)}`;
    const request = requestFor({ ...upload, plan });
    let last: unknown;
    for (const stage of plan) last = await runIn(fx.envFor(jobId), fx.activities[stage.activity]!, request);

    const result = ProcessStageResult.parse(last);
    expect(result.outputs.map((o) => o.name)).toEqual(['DamagedHelmet-blender-report.json']);
    const published = (await fx.storage.listOutputs(jobId)).map((o) => o.name);
    expect(published).toEqual(
      expect.arrayContaining([
        'DamagedHelmet-lod0.glb',
        'DamagedHelmet-lod1.glb',
        'DamagedHelmet-lod2.glb',
        'report.json',
        'DamagedHelmet-blender-report.json',
      ]),
    );
    const stored = await fx.storage.openOutput(jobId, 'DamagedHelmet-blender-report.json');
    const text = await new Response(Readable.toWeb(stored!.stream) as ReadableStream).text();
    if (HAS_BPY) {
      const report = z
        .object({
          blender: z.string(),
          model: z.string(),
          sizeMeters: z.array(z.number()).length(3),
          objects: z.array(z.object({ polygons: z.number() })).min(1),
        })
        .parse(JSON.parse(text));
      expect(report.blender).toMatch(/^5\./);
      expect(report.model).toBe('optimized.glb');
      // The helmet is about 2 m across; every side measured, none zero.
      expect(report.sizeMeters.every((s) => s > 0.5 && s < 5)).toBe(true);
      expect(report.objects.reduce((sum, o) => sum + o.polygons, 0)).toBeGreaterThan(1000);
    } else {
      expect(text).toContain('optimized.glb');
    }
    // Its progress, parsed from the script's STEP lines, reached the mirror.
    const catchUp = await fx.jobLog.catchUp(jobId, 0);
    const steps = (catchUp.kind === 'replay' ? catchUp.messages : []).flatMap((m) =>
      m.type === 'progress' && m.stage === 'blender-report' && m.total > 1 ? [m.done] : [],
    );
    expect(steps.at(-1)).toBe(steps.length ? Math.max(...steps) : -1);
    expect(steps.length).toBeGreaterThan(0);
  }, 120_000);
});
