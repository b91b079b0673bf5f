import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateGltfBytes } from '../../activities/gltf-validation.js';
import { PREVIEW_FILES } from '../../common/pipeline.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

/** Bounds a wait for a job (Blender and the pipeline on a shared 2-core machine); not a performance assertion. */
const JOB_TIMEOUT_MS = 240_000;
const OBJ_DIR = path.join(SHARED_ASSETS, 'BoxTexturedOBJ');
const SAMPLES = [
  { what: 'FBX', files: [path.join(SHARED_ASSETS, 'DamagedHelmet.fbx')], model: 'DamagedHelmet' },
  {
    what: 'OBJ + MTL + PNG',
    files: ['BoxTextured.obj', 'BoxTextured.mtl', 'CesiumLogoFlat.png'].map((f) => path.join(OBJ_DIR, f)),
    model: 'BoxTextured',
  },
  { what: '.blend', files: [path.join(SHARED_ASSETS, 'BoxTextured.blend')], model: 'BoxTextured' },
];

interface JobView {
  status: string;
  snapshot?: { event?: { event: string; stage?: string; error?: { type: string; message: string } } } | null;
  /** The report; the Blender stages' results are in its other stages (common/stages.ts). */
  result?: { stages?: { import?: { format: string }; preview?: { rendered: boolean } } } | null;
}
interface Outputs {
  outputs: { name: string; kind: string; bytes: number }[];
}

describe('FBX, OBJ and .blend uploads through the real stack', () => {
  let stack: TestStack;
  let connection: Connection;
  let temporal: Client;
  const work = mkdtempSync(path.join(os.tmpdir(), 'blender-e2e-'));
  beforeAll(async () => {
    stack = await startStack();
    connection = await Connection.connect({ address: stack.temporalAddress });
    temporal = new Client({ connection, namespace: stack.namespace });
  });
  afterAll(async () => {
    await connection?.close();
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const auth = () => ({ authorization: `Bearer ${stack.tokenFor('alice')}` });
  const get = async <T>(route: string): Promise<T> => (await (await fetch(`${stack.apiUrl}${route}`, { headers: auth() })).json()) as T;
  async function submit(files: string[]): Promise<string> {
    const res = await uploadAsset(stack.apiUrl, stack.tokenFor('alice'), files);
    expect(res.status).toBe(202);
    return ((await res.json()) as { jobId: string }).jobId;
  }
  const ended = (jobId: string) =>
    waitFor(
      async () => {
        const view = await get<JobView>(`/api/jobs/${jobId}`);
        return view.status !== 'RUNNING' && view.snapshot?.event ? view : undefined;
      },
      { timeoutMs: JOB_TIMEOUT_MS, what: `${jobId} to end` },
    );

  it('converts each sample, runs the usual pipeline, and delivers valid GLBs with a turntable and a still', async () => {
    const jobs = await Promise.all(SAMPLES.map(async (sample) => ({ ...sample, jobId: await submit(sample.files) })));
    for (const job of jobs) {
      const view = await ended(job.jobId);
      expect(view.status, job.what).toBe('COMPLETED');
      expect(view.result?.stages?.import?.format, job.what).toBe(path.extname(job.files[0]!).slice(1));
      expect(view.result?.stages?.preview?.rendered, job.what).toBe(true);
      const { outputs } = await get<Outputs>(`/api/jobs/${job.jobId}/outputs`);
      const glbs = outputs.filter((o) => o.kind === 'glb');
      expect(glbs.map((o) => o.name).sort(), job.what).toEqual([0, 1, 2].map((l) => `${job.model}-lod${l}.glb`));
      for (const glb of glbs) {
        const bytes = new Uint8Array(
          await (await fetch(`${stack.apiUrl}/api/jobs/${job.jobId}/outputs/${glb.name}`, { headers: auth() })).arrayBuffer(),
        );
        const validation = await validateGltfBytes(bytes, { uri: glb.name });
        expect(validation.errors, `${job.what} ${glb.name}`).toBe(0);
      }
      expect(
        outputs
          .filter((o) => o.kind === 'preview')
          .map((o) => o.name)
          .sort(),
        job.what,
      ).toEqual(Object.values(PREVIEW_FILES).sort());
      const turntable = Buffer.from(
        await (await fetch(`${stack.apiUrl}/api/jobs/${job.jobId}/outputs/${PREVIEW_FILES.turntable}`, { headers: auth() })).arrayBuffer(),
      );
      // The test stack renders 4 frames of 64² (test/helpers/stack.ts).
      expect(await sharp(turntable, { animated: true }).metadata(), job.what).toMatchObject({
        format: 'webp',
        pages: 4,
        width: 64,
        pageHeight: 64,
      });
    }
  });

  it('fails a corrupt FBX once, as the file’s fault, in the artist’s words', async () => {
    const original = readFileSync(path.join(SHARED_ASSETS, 'DamagedHelmet.fbx'));
    const file = path.join(work, 'Broken.fbx');
    writeFileSync(file, original.subarray(0, Math.floor(original.length / 3)));
    const jobId = await submit([file]);
    const view = await ended(jobId);
    expect(view.status).toBe('FAILED');
    expect(view.snapshot!.event).toMatchObject({ event: 'failed', stage: 'import', error: { type: 'MODEL_UNREADABLE' } });
    // Blender's reason, the file by its name: no path of the farm's machines.
    expect(view.snapshot!.event!.error!.message).toMatch(
      /^Blender cannot read Broken\.fbx: Couldn't open file 'Broken\.fbx' \(failed to read/,
    );
    // Not retried: the import ran one attempt, no later stage ran, and the job's folder was cleaned up.
    const events = (await temporal.workflow.getHandle(jobId).fetchHistory()).events ?? [];
    const scheduled = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect(scheduled).toEqual(['importModel', 'cleanupJob']);
    const started = events.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1, 1]);
  });
});
