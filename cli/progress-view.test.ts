import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { JobFailureCode } from '../common/failures.js';
import type { JobEventMessage, ProgressMessage } from '../common/progress.js';
import { createJobView, outcomeLine } from './progress-view.js';

const base = { jobId: 'asset-alice-1', owner: 'alice', ts: 0 };
const progress: ProgressMessage = {
  ...base,
  type: 'progress',
  seq: 2,
  stage: 'inspect',
  stageIndex: 0,
  stageCount: 6,
  done: 1,
  total: 2,
  unit: 'meshes',
  percent: 8,
  message: 'Reading meshes',
  etaMs: null,
  attempt: 1,
};
const completed: JobEventMessage = { ...base, type: 'event', seq: 3, event: 'completed', message: 'TwoCubes.glb is ready' };

/** A stream that says it is (or is not) a terminal, collecting what is written. */
function fakeStream(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  let written = '';
  stream.on('data', (chunk: Buffer) => (written += chunk.toString()));
  Object.assign(stream, {
    isTTY,
    columns: 120,
    rows: 40,
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
    clearScreenDown: () => true,
  });
  return { out: stream as unknown as NodeJS.WriteStream, text: () => stripVTControlCharacters(written) };
}

describe('job views', () => {
  it('draws a bar per stage on a terminal and ends with the outcome line', () => {
    const { out, text } = fakeStream(true);
    const view = createJobView({ json: false, out });
    view.message(progress);
    view.message(completed);
    view.finish(base.jobId, { outcome: 'completed', event: completed });
    const screen = text();
    for (const stage of ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package']) expect(screen).toContain(stage);
    expect(screen).toMatch(/inspect .*100%\s+done/);
    expect(screen).toMatch(/package .*skipped/);
    expect(screen.trimEnd().split('\n').at(-1)).toBe('asset-alice-1 completed: TwoCubes.glb is ready');
  });

  it('prints plain lines without a terminal: stage changes and the outcome', () => {
    const { out, text } = fakeStream(false);
    const view = createJobView({ json: false, out, lineIntervalMs: 0 });
    view.message(progress);
    view.reconnecting(1, 'ECONNREFUSED');
    view.message(completed);
    view.finish(base.jobId, { outcome: 'completed', event: completed });
    expect(text().trimEnd().split('\n')).toEqual([
      'inspect: running',
      'inspect: 50% 1/2 meshes (job 8%)',
      'connection lost (ECONNREFUSED); reconnecting, attempt 1',
      'inspect: done',
      'validate: skipped',
      'optimize: skipped',
      'lods: skipped',
      'textures: skipped',
      'package: skipped',
      'asset-alice-1 completed: TwoCubes.glb is ready',
    ]);
  });

  it('prints NDJSON with --json, and a status line when the outcome came from REST', () => {
    const { out, text } = fakeStream(true);
    const view = createJobView({ json: true, out });
    view.message(progress);
    view.finish(base.jobId, { outcome: 'terminated', event: null });
    expect(
      text()
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([progress, { type: 'status', jobId: base.jobId, outcome: 'terminated' }]);
  });
});

describe('the outcome line', () => {
  const failed = (type: JobFailureCode): JobEventMessage => ({
    ...base,
    type: 'event',
    seq: 9,
    event: 'failed',
    message: 'It failed.',
    error: { type, message: 'It failed.' },
  });

  it('suggests a retry only for a failure the catalogue marks retryable', () => {
    expect(outcomeLine('asset-alice-1', { outcome: 'failed', event: failed('STORAGE') })).toContain('asset-farm retry asset-alice-1');
    expect(outcomeLine('asset-alice-1', { outcome: 'failed', event: failed('INVALID_ASSET') })).not.toContain('retry');
    expect(outcomeLine('asset-alice-1', { outcome: 'failed', event: failed('OUTPUT_INVALID') })).not.toContain('retry');
  });
});
