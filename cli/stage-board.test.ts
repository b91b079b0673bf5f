import { describe, expect, it } from 'vitest';
import { BUILTIN_STAGE_NAMES as STAGES } from '../common/stages.js';
import type { JobEventMessage, ProgressMessage } from '../common/progress.js';
import { StageBoard } from './stage-board.js';

const base = { jobId: 'asset-alice-1', owner: 'alice', ts: 0 };
let seq = 0;
function progress(stage: string, done: number, total: number, percent: number): ProgressMessage {
  const stageIndex = STAGES.indexOf(stage as (typeof STAGES)[number]);
  return {
    ...base,
    type: 'progress',
    seq: ++seq,
    stage,
    stageIndex,
    stageCount: STAGES.length,
    done,
    total,
    unit: 'meshes',
    percent,
    message: '',
    etaMs: null,
    attempt: 1,
  };
}
function event(kind: JobEventMessage['event'], stage?: string): JobEventMessage {
  return { ...base, type: 'event', seq: ++seq, event: kind, message: kind, ...(stage ? { stage } : {}) };
}
const states = (board: StageBoard) => Object.fromEntries(board.stages.map((s) => [s.name, s.state]));

describe('StageBoard', () => {
  it('lists every pipeline stage as pending before anything happens', () => {
    expect(new StageBoard().stages.map((s) => [s.name, s.state])).toEqual(STAGES.map((s) => [s, 'pending']));
  });

  it("takes the job's own plan from its started event, a studio stage included, keeping what it already knew", () => {
    const board = new StageBoard();
    board.apply(event('stage-started', 'inspect'));
    const plan = ['inspect', 'validate', 'optimize', 'bake-ao', 'lods', 'textures', 'package'];
    board.apply({ ...event('started'), stages: plan });
    expect(board.stages.map((s) => s.name)).toEqual(plan);
    expect(states(board)).toMatchObject({ inspect: 'active', 'bake-ao': 'pending' });
  });

  it('marks the reporting stage active and every earlier one done, and reports only the changes', () => {
    const board = new StageBoard();
    expect(board.apply(progress('optimize', 3, 10, 40)).map((s) => s.name)).toEqual(['inspect', 'validate', 'optimize']);
    expect(states(board)).toMatchObject({ inspect: 'done', validate: 'done', optimize: 'active', lods: 'pending' });
    expect(board.stages.find((s) => s.name === 'optimize')).toMatchObject({ percent: 30, detail: '3/10 meshes' });
    expect(board.jobPercent).toBe(40);
    expect(board.apply(progress('optimize', 4, 10, 42))).toEqual([]);
  });

  it('marks the active stage failed on failure and cancelled on cancel', () => {
    const failed = new StageBoard();
    failed.apply(progress('lods', 1, 4, 60));
    failed.apply(event('failed'));
    expect(states(failed)).toMatchObject({ optimize: 'done', lods: 'failed', textures: 'pending' });

    const cancelled = new StageBoard();
    cancelled.apply({ type: 'snapshot', jobId: base.jobId, seq: 9, progress: progress('inspect', 1, 2, 5), event: event('cancelled') });
    expect(states(cancelled)).toMatchObject({ inspect: 'cancelled', validate: 'pending' });
  });

  it('on completion shows stages that never reported as skipped, not done', () => {
    const board = new StageBoard();
    board.apply(progress('inspect', 2, 2, 100));
    board.apply(event('stage-finished', 'inspect'));
    board.apply(event('completed'));
    expect(states(board)).toMatchObject({ inspect: 'done', validate: 'skipped', package: 'skipped' });
    expect(board.jobPercent).toBe(100);
  });

  it('shows a stage a newer server reports at the position it gives', () => {
    const board = new StageBoard();
    board.apply({ ...progress('inspect', 1, 1, 10), stage: 'scan', stageIndex: 1 });
    expect(board.stages.map((s) => s.name).slice(0, 3)).toEqual(['inspect', 'scan', 'validate']);
  });
});
