import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { describeFailure } from './failure-reasons.js';

const inActivity = (cause: Error) =>
  new ActivityFailure('Activity task failed', 'optimizeAsset', '9', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'hpc-1', cause);

describe('what the artist is told when a job fails', () => {
  it('passes on an invalid asset as the activity worded it, with the validator messages', () => {
    const messages = [{ code: 'MESH_PRIMITIVE_NO_POSITION', message: 'No POSITION attribute', severity: 'error' }];
    const failure = inActivity(ApplicationFailure.nonRetryable('Chair.glb is not valid glTF: 1 error', 'INVALID_ASSET', ...messages));
    expect(describeFailure(failure)).toEqual({ type: 'INVALID_ASSET', message: 'Chair.glb is not valid glTF: 1 error', details: messages });
  });

  it('sees through a failed child job to its cause (batch outcomes)', () => {
    const child = new ChildWorkflowFailure(
      'default',
      { workflowId: 'asset-alice-1', runId: 'r' },
      'processAsset',
      RetryState.NON_RETRYABLE_FAILURE,
      inActivity(ApplicationFailure.nonRetryable('bad', 'INVALID_ASSET')),
    );
    expect(describeFailure(child)).toMatchObject({ type: 'INVALID_ASSET', message: 'bad' });
  });

  it('keeps internal error text out of the artist message and says what to do', () => {
    const reason = describeFailure(
      inActivity(ApplicationFailure.create({ message: 'ENOSPC: /scratch/asset-alice-1/lod1.glb', type: 'Error' })),
    );
    expect(reason.type).toBe('INTERNAL');
    expect(reason.message).not.toContain('/scratch');
    expect(reason.message).toMatch(/retry/i);
  });

  it('explains a stage that ran out of time', () => {
    expect(describeFailure(inActivity(new TimeoutFailure('timed out', undefined, 'START_TO_CLOSE')))).toMatchObject({ type: 'TIMEOUT' });
  });

  it('tells a full or read-only disk as the farm’s storage fault, worth retrying', () => {
    const reason = describeFailure(inActivity(ApplicationFailure.retryable('ENOSPC: no space left on device, write', 'STORAGE')));
    expect(reason).toMatchObject({ type: 'STORAGE', message: expect.stringMatching(/not a problem with your asset/) });
    expect(reason.message).not.toContain('ENOSPC');
  });

  it('reads a failure type this build does not know as INTERNAL', () => {
    expect(describeFailure(inActivity(ApplicationFailure.nonRetryable('x', 'SomethingNew'))).type).toBe('INTERNAL');
  });
});
