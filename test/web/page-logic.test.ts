import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_ASSETS } from '../helpers/upload.js';
import type { JobEventMessage, ProgressMessage } from '../../common/progress.js';
import { explainJobFailure, explainValidatorMessage } from '../../web/src/artist-messages.js';
import { groupAssets, type PickedFile } from '../../common/asset-grouping.js';
import { OutputListBody } from '../../web/src/server-frames.js';
import {
  applyMessage,
  applySnapshot,
  elapsedMs,
  isStalled,
  jobPercent,
  stageEtaMs,
  jobFromSummary,
  markCancelling,
  stageRows,
  type JobView,
} from '../../web/src/job-model.js';

const T0 = 1_700_000_000_000;
const job = (): JobView =>
  jobFromSummary(
    {
      jobId: 'asset-alice-1',
      assetName: 'Helmet.glb',
      preset: 'game-ready',
      priority: 'normal',
      retryOf: null,
      retry: null,
      kind: 'asset',
      batchId: null,
      status: 'RUNNING',
      stage: null,
      outcome: null,
      startTime: new Date(T0).toISOString(),
      closeTime: null,
    },
    T0,
  );
const progress = (seq: number, stageIndex: number, done: number, extra: Partial<ProgressMessage> = {}): ProgressMessage => ({
  type: 'progress',
  seq,
  jobId: 'asset-alice-1',
  owner: 'alice',
  stage: ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package'][stageIndex]!,
  stageIndex,
  stageCount: 6,
  done,
  total: 10,
  unit: 'steps',
  percent: ((stageIndex + done / 10) / 6) * 100,
  message: `step ${done}`,
  etaMs: 1000,
  attempt: 1,
  ts: T0 + seq,
  ...extra,
});
const event = (seq: number, kind: JobEventMessage['event'], extra: Partial<JobEventMessage> = {}): JobEventMessage => ({
  type: 'event',
  seq,
  jobId: 'asset-alice-1',
  owner: 'alice',
  event: kind,
  message: kind,
  ts: T0 + seq,
  ...extra,
});

describe('job model: what a card shows from the socket messages', () => {
  it('shows stages done, active and pending from the latest progress, and ignores repeated or older messages', () => {
    let j = applyMessage(job(), event(1, 'started'), T0);
    j = applyMessage(j, progress(2, 2, 4), T0);
    const again = applyMessage(j, progress(2, 2, 9), T0);
    const older = applyMessage(j, progress(1, 0, 1), T0);
    expect(again).toBe(j);
    expect(older).toBe(j);
    expect(stageRows(j).map((r) => r.state)).toEqual(['done', 'done', 'active', 'pending', 'pending', 'pending']);
    expect(stageRows(j)[2]!.fraction).toBeCloseTo(0.4);
    expect(j.lastSeq).toBe(2);
  });

  it("lists the job's own stages from its started event: a studio stage is named where its plan puts it", () => {
    const plan = ['inspect', 'validate', 'optimize', 'check-naming', 'lods', 'textures', 'package'];
    let j = applyMessage(job(), event(1, 'started', { stages: plan }), T0);
    expect(stageRows(j).map((r) => [r.name, r.state])).toEqual(plan.map((name) => [name, 'pending']));
    j = applyMessage(j, progress(2, 3, 5, { stage: 'check-naming', stageCount: 7 }), T0);
    expect(stageRows(j).map((r) => r.state)).toEqual(['done', 'done', 'done', 'active', 'pending', 'pending', 'pending']);
    expect(stageRows(j)[4]!.name).toBe('lods');
  });

  it('keeps a stage at 100 % active and the job under 100 % until the workflow says the stage finished', () => {
    let j = applyMessage(job(), progress(3, 5, 10, { percent: 100 }), T0);
    expect(stageRows(j).at(-1)!.state).toBe('active');
    expect(jobPercent(j)).toBe(99);
    j = applyMessage(j, event(4, 'stage-finished', { stage: 'package' }), T0);
    expect(stageRows(j).at(-1)!.state).toBe('done');
    expect(jobPercent(applyMessage(j, event(5, 'completed'), T0))).toBe(100);
  });

  it('gives no ETA at 0 % (nothing measured yet) nor once the stage is done', () => {
    expect(stageEtaMs(applyMessage(job(), progress(1, 2, 0, { etaMs: 0 }), T0))).toBeNull();
    expect(stageEtaMs(applyMessage(job(), progress(1, 2, 10, { etaMs: 0 }), T0))).toBeNull();
    expect(stageEtaMs(applyMessage(job(), progress(1, 2, 4, { etaMs: 3000 }), T0))).toBe(3000);
  });

  it('times a job reset in Temporal from its new run, not from the first start', () => {
    let j = applyMessage(job(), event(1, 'started', { runId: 'run-1' }), T0);
    j = applyMessage(j, event(2, 'failed', { runId: 'run-1', ts: T0 + 60_000 }), T0 + 60_000);
    expect(elapsedMs(j, T0 + 600_000)).toBe(60_000);
    j = applyMessage(j, event(3, 'started', { runId: 'run-2', ts: T0 + 500_000 }), T0 + 500_000);
    expect(j.phase).toBe('running');
    expect(elapsedMs(j, T0 + 530_000)).toBe(30_000);
  });

  it('marks every stage done on completed and keeps "cancelling…" until the cancel is confirmed', () => {
    let j = applyMessage(job(), progress(3, 5, 10), T0);
    expect(stageRows(applyMessage(j, event(4, 'completed'), T0)).every((r) => r.state === 'done')).toBe(true);
    j = markCancelling(applyMessage(job(), progress(3, 1, 2), T0));
    j = applyMessage(j, progress(4, 1, 3), T0);
    expect(j.phase).toBe('cancelling');
    j = applyMessage(j, event(5, 'cancelled'), T0);
    expect(j.phase).toBe('cancelled');
    expect(stageRows(j)[1]!.state).toBe('cancelled');
  });

  it('shows the attempt number when a stage is retried, and marks a silent running job as stalled', () => {
    const j = applyMessage(job(), progress(2, 1, 1, { attempt: 2 }), T0);
    expect(j.attempt).toBe(2);
    expect(isStalled(j, T0 + 10_000, 30_000)).toBe(false);
    expect(isStalled(j, T0 + 31_000, 30_000)).toBe(true);
    expect(isStalled(applyMessage(j, event(3, 'failed'), T0), T0 + 60_000, 30_000)).toBe(false);
  });

  it('marks a job stalled when the HPC worker says so, though heartbeat ticks keep arriving, until it moves again', () => {
    let j = applyMessage(job(), event(2, 'stalled'), T0);
    j = applyMessage(j, progress(3, 1, 1), T0 + 1_000);
    expect(j.phase).toBe('running');
    expect(isStalled(j, T0 + 2_000, 30_000)).toBe(true);
    j = applyMessage(j, event(4, 'unstalled'), T0 + 3_000);
    expect(isStalled(j, T0 + 4_000, 30_000)).toBe(false);
  });

  it('takes a snapshot of a finished job with its progress, so the stage list shows where it got to', () => {
    const finished = jobFromSummary(
      {
        ...job(),
        preset: null,
        priority: null,
        retryOf: null,
        kind: 'asset',
        batchId: null,
        status: 'FAILED',
        stage: null,
        outcome: null,
        startTime: new Date(T0).toISOString(),
        closeTime: null,
      },
      T0,
    );
    const j = applySnapshot(finished, { seq: 9, progress: progress(8, 2, 5), event: event(9, 'failed') }, T0);
    expect(j.phase).toBe('failed');
    expect(j.lastSeq).toBe(9);
    expect(stageRows(j).map((r) => r.state)).toEqual(['done', 'done', 'failed', 'pending', 'pending', 'pending']);
  });

  it('follows a reset snapshot below its seq (Redis lost the job), and ignores a plain older one', () => {
    let j = applyMessage(job(), progress(40, 3, 5), T0);
    expect(applySnapshot(j, { seq: 2, progress: progress(2, 0, 1), event: null }, T0)).toBe(j);
    j = applySnapshot(j, { seq: 0, progress: null, event: null, reset: true }, T0 + 1_000);
    expect(j).toMatchObject({ lastSeq: 0, progress: null, lastEvent: null, phase: 'running' });
    // The job's new messages start again at 1 and are applied.
    j = applyMessage(j, progress(1, 0, 1, { attempt: 2 }), T0 + 2_000);
    expect(j).toMatchObject({ lastSeq: 1, attempt: 2 });
    expect(j.progress?.stageIndex).toBe(0);
  });
});

describe('asset grouping: what one upload job gets', () => {
  const file = (name: string, size = 10) => ({ name, size });
  const gltf = (uris: string[]) =>
    JSON.stringify({ asset: { version: '2.0' }, buffers: [{ uri: uris[0] }], images: uris.slice(1).map((uri) => ({ uri })) });

  it('sends a .gltf with the .bin and images it names as one asset, and each .glb as its own', async () => {
    const texts = new Map([['Box.gltf', gltf(['Box0.bin', 'Box%20Color.png'])]]);
    const picked: PickedFile<{ name: string; size: number }>[] = [
      { file: file('Box.gltf'), dir: 'BoxTextured' },
      { file: file('Box0.bin'), dir: 'BoxTextured' },
      { file: file('Box Color.png'), dir: 'BoxTextured' },
      { file: file('notes.txt'), dir: 'BoxTextured' },
      { file: file('Helmet.glb', 3000), dir: '' },
      { file: file('Cubes.glb'), dir: 'more' },
    ];
    const { assets, unused } = await groupAssets(picked, async (f) => texts.get(f.name)!, 1000);
    expect(assets.map((a) => [a.name, a.files.map((f) => f.file.name)])).toEqual([
      ['Box.gltf', ['Box.gltf', 'Box0.bin', 'Box Color.png']],
      ['Helmet.glb', ['Helmet.glb']],
      ['Cubes.glb', ['Cubes.glb']],
    ]);
    expect(assets[0]!.problems).toEqual([]);
    expect(assets[1]!.problems.join()).toMatch(/larger than the upload limit/);
    expect(unused.map((u) => u.file.name)).toEqual(['notes.txt']);
  });

  it('groups an .obj with its .mtl and the textures the .mtl names, and FBX and .blend files alone', async () => {
    const dir = path.join(SHARED_ASSETS, 'BoxTexturedOBJ');
    const picked = [...readdirSync(dir), 'notes.txt'].map((name) => ({ file: file(name), dir: 'BoxTexturedOBJ' }));
    picked.push({ file: file('DamagedHelmet.fbx'), dir: '' }, { file: file('BoxTextured.blend'), dir: '' });
    const read = async (f: { name: string }) => (f.name === 'notes.txt' ? 'mtllib x.mtl' : readFileSync(path.join(dir, f.name), 'utf8'));
    const { assets, unused } = await groupAssets(picked, read, 1000);
    expect(assets.map((a) => [a.name, a.files.map((f) => f.file.name).sort()])).toEqual([
      ['BoxTextured.obj', ['BoxTextured.mtl', 'BoxTextured.obj', 'CesiumLogoFlat.png']],
      ['DamagedHelmet.fbx', ['DamagedHelmet.fbx']],
      ['BoxTextured.blend', ['BoxTextured.blend']],
    ]);
    expect(assets.flatMap((a) => a.problems)).toEqual([]);
    expect(unused.map((u) => u.file.name)).toEqual(['notes.txt']);
  });

  it('says which file an .obj or its .mtl is missing', async () => {
    const texts = new Map([
      ['Crate.obj', 'o Crate\nmtllib Crate.mtl\nv 0 0 0\n'],
      ['Crate.mtl', 'newmtl wood\nmap_Kd -s 1 1 1 wood.png\nmap_Bump -bm 0.5 wood-normal.png\n'],
    ]);
    const picked = [
      { file: file('Crate.obj'), dir: '' },
      { file: file('Crate.mtl'), dir: '' },
      { file: file('wood.png'), dir: '' },
    ];
    const { assets } = await groupAssets(picked, async (f) => texts.get(f.name)!, 1000);
    expect(assets[0]!.files.map((f) => f.file.name)).toEqual(['Crate.obj', 'Crate.mtl', 'wood.png']);
    expect(assets[0]!.problems).toEqual(['Crate.obj needs wood-normal.png, which was not picked. Add it (drop the whole folder).']);
  });

  it('says which file a .gltf is missing', async () => {
    const { assets } = await groupAssets([{ file: file('Box.gltf'), dir: '' }], async () => gltf(['Box0.bin']), 1000);
    expect(assets[0]!.problems).toEqual(['Box.gltf needs Box0.bin, which was not picked. Add it (drop the whole folder).']);
  });
});

describe('artist messages', () => {
  it('turns validator findings of a bad asset into plain advice, keeping the original for an engineer', () => {
    const message = explainJobFailure({
      type: 'INVALID_ASSET',
      message: 'Box.gltf failed validation.',
      details: [
        { code: 'IO_ERROR', message: 'Resource not found (Box0.bin).', severity: 'error', pointer: '/buffers/0' },
        'not a validator message',
      ],
    });
    expect(message.title).toBe("This asset can't be processed");
    expect(message.details).toEqual([
      'A file the model refers to is missing or could not be opened; upload the .gltf together with its .bin and textures. Validator: Resource not found (Box0.bin). (at /buffers/0)',
    ]);
    expect(explainJobFailure({ type: 'STORAGE', message: 'disk full' }).advice).toMatch(/not a problem with your asset/);
  });

  it('says a warning or info for what it is, never in the words of a failure', () => {
    const draco = explainValidatorMessage({
      code: 'UNSUPPORTED_EXTENSION',
      message: 'Cannot validate an extension as it is not supported by the validator: KHR_draco_mesh_compression.',
      severity: 'info',
    });
    expect(draco).toMatch(/farm still processed it/);
    expect(draco).not.toMatch(/does not support|export without it/);
    const tangents = explainValidatorMessage({ code: 'MESH_PRIMITIVE_GENERATED_TANGENT_SPACE', message: 'No tangents.', severity: 'info' });
    expect(tangents).not.toMatch(/engines cannot use/);
    const image = explainValidatorMessage({
      code: 'IMAGE_NPOT_DIMENSIONS',
      message: 'Image has non-power-of-two dimensions.',
      severity: 'info',
    });
    expect(image).toBe('Image has non-power-of-two dimensions.');
    // The same code as an error keeps the plain advice.
    expect(explainValidatorMessage({ code: 'IMAGE_UNREADABLE', message: 'x', severity: 'error' })).toMatch(/cannot be read/);
  });

  it('offers Retry only for a failure that can succeed when run again', () => {
    expect(explainJobFailure({ type: 'INVALID_ASSET', message: 'bad' }).retryable).toBe(false);
    expect(explainJobFailure({ type: 'OUTPUT_INVALID', message: 'bad output' }).retryable).toBe(false);
    expect(explainJobFailure({ type: 'STORAGE', message: 'disk full' }).retryable).toBe(true);
    expect(explainJobFailure({ type: 'SOMETHING_NEW', message: '?' }).retryable).toBe(true);
  });

  it('tells a file cut short to be uploaded again, and says each finding once', () => {
    const message = explainJobFailure({
      type: 'INVALID_ASSET',
      message: 'Box.glb is shorter than its header says.',
      details: [{ code: 'GLB_LENGTH_MISMATCH', message: 'Box.glb is shorter than its header says.', severity: 'error' }],
    });
    expect(message.advice).toMatch(/Upload it again/);
    expect(message.advice).not.toMatch(/3D tool/);
    expect(message.details).toEqual([]);
  });
});

describe('REST bodies the page reads', () => {
  it('reads the outputs listing with the schema the API builds it from, and refuses a listing without digests', () => {
    const output = {
      name: 'Helmet-lod1.glb',
      bytes: 1200,
      size: 1200,
      sha256: 'a'.repeat(64),
      kind: 'glb',
      level: 1,
      modifiedAt: '2026-01-01T00:00:00Z',
    };
    expect(OutputListBody.parse({ jobId: 'asset-alice-1', outputs: [output] })).toEqual([output]);
    const { sha256: _, ...withoutDigest } = output;
    expect(OutputListBody.safeParse({ jobId: 'asset-alice-1', outputs: [withoutDigest] }).success).toBe(false);
  });
});
