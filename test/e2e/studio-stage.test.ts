import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BUILTIN_STAGES, planStages } from '../../common/stages.js';
import { loadStageRegistry } from '../../common/studio-stages.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { TestSocket } from '../helpers/socket-client.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { exampleStagesConfig, HAS_BPY } from '../helpers/studio-stages.js';

describe(`a studio stage added by STAGES_CONFIG only (${HAS_BPY ? 'Blender' : 'stand-in tool: no bpy here'})`, () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ env: { STAGES_CONFIG: exampleStagesConfig() } });
  });
  afterAll(async () => {
    await stack?.stop();
  });
  /** A socket of `user` following all their jobs. */
  async function watchAll(token: string): Promise<TestSocket> {
    const socket = TestSocket.connect(stack.wsUrl, token);
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed' && m.all === true);
    return socket;
  }

  it('plans, runs, streams, reports and delivers it: the page and CLI see it in the plan, its file is an output', async () => {
    const token = stack.tokenFor('alice');
    const socket = await watchAll(token);
    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    await socket.waitFor((m) => m.jobId === jobId && m.type === 'event' && m.event === 'completed', 120_000, 'the completed event');

    const messages = socket.messages.filter((m) => m.jobId === jobId);
    // The registry with the studio's stage, planned as the API plans the job (its preset, its upload).
    const plan = planStages(loadStageRegistry(exampleStagesConfig()), { preset: 'game-ready', fileNames: ['TwoCubes.glb'] }).map(
      (s) => s.name,
    );
    expect(plan).toContain('blender-report');
    expect(messages.find((m) => m.type === 'event' && m.event === 'started')?.stages).toEqual(plan);
    expect(messages.filter((m) => m.type === 'event' && m.event === 'stage-started').map((m) => m.stage)).toEqual(plan);
    const studioProgress = messages.filter((m) => m.type === 'progress' && m.stage === 'blender-report');
    expect(studioProgress.length).toBeGreaterThan(0);
    // Its last report is the stage finished, at its place in the plan.
    const index = plan.indexOf('blender-report');
    expect(studioProgress.at(-1)).toMatchObject({
      stageIndex: index,
      stageCount: plan.length,
      percent: Math.round(((index + 1) / plan.length) * 10000) / 100,
    });
    socket.close();

    const auth = { headers: { authorization: `Bearer ${token}` } };
    const outputs = z
      .object({ outputs: z.array(z.object({ name: z.string() })) })
      .parse(await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs`, auth)).json());
    expect(outputs.outputs.map((o) => o.name)).toEqual(
      expect.arrayContaining(['TwoCubes-lod0.glb', 'report.json', 'TwoCubes-blender-report.json']),
    );
    const report = await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/outputs/TwoCubes-blender-report.json`, auth)).text();
    if (HAS_BPY) expect(z.object({ objects: z.array(z.unknown()) }).parse(JSON.parse(report)).objects).toHaveLength(2);
    else expect(report).toContain('optimized.glb');

    // The job's result keeps the stage's own result; the history view names the stage of its activity.
    const job = await waitFor(
      async () => {
        const body = z
          .object({ status: z.string(), result: z.object({ stages: z.record(z.string(), z.unknown()).optional() }).nullable() })
          .parse(await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, auth)).json());
        return body.status === 'COMPLETED' && body;
      },
      { timeoutMs: 30_000, what: 'the job to be COMPLETED' },
    );
    expect(job.result?.stages?.['blender-report']).toMatchObject({ exitCode: 0, outputs: [{ name: 'TwoCubes-blender-report.json' }] });
    const history = z
      .object({ events: z.array(z.object({ activityType: z.string().optional(), stage: z.string().optional() })) })
      .parse(await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}/history`, auth)).json());
    expect(history.events.filter((e) => e.activityType === 'studioStage.blender-report').map((e) => e.stage)).toContain('blender-report');
  }, 180_000);

  it('leaves it out of presets it does not list', async () => {
    const token = stack.tokenFor('bob');
    const socket = await watchAll(token);
    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')], { preset: 'archive' });
    const { jobId } = (await res.json()) as { jobId: string };
    const started = await socket.waitFor((m) => m.jobId === jobId && m.type === 'event' && m.event === 'started', 60_000, 'started');
    expect(started.stages).toEqual(planStages(BUILTIN_STAGES, { preset: 'archive', fileNames: ['TwoCubes.glb'] }).map((s) => s.name));
    expect(started.stages).not.toContain('blender-report');
    socket.close();
  }, 120_000);
});
