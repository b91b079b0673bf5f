import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { describeFailure } from './failure-reasons.js';

const inActivity = (cause: Error) =>
  new ActivityFailure('Activity task failed', 'optimizeAsset', '9', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'hpc-1', cause);

describe('what the artist is told when a job fails', () => {
  it('passes on an invalid asset as the activity worded it, with the validator messages', () => {
    const messages = [{ code: 'MESH_PRIMITIVE_NO_POSITION', message: 'No POSITION attribute', severity: 'error' }];
    const failure = inActivity(ApplicationFailure.nonRetryable('Chair.glb is not valid glTF: 1 error', 'InvalidAsset', ...messages));
    expect(describeFailure(failure)).toEqual({ type: 'InvalidAsset', message: 'Chair.glb is not valid glTF: 1 error', details: messages });
  });

  it('sees through a failed child job to its cause (batch outcomes)', () => {
    const child = new ChildWorkflowFailure(
      'default',
      { workflowId: 'asset-alice-1', runId: 'r' },
      'processAsset',
      RetryState.NON_RETRYABLE_FAILURE,
      inActivity(ApplicationFailure.nonRetryable('bad', 'InvalidAsset')),
    );
    expect(describeFailure(child)).toMatchObject({ type: 'InvalidAsset', message: 'bad' });
  });

  it('keeps internal error text out of the artist message and says what to do', () => {
    const reason = describeFailure(
      inActivity(ApplicationFailure.create({ message: 'ENOSPC: /scratch/asset-alice-1/lod1.glb', type: 'Error' })),
    );
    expect(reason.type).toBe('InternalError');
    expect(reason.message).not.toContain('/scratch');
    expect(reason.message).toMatch(/try again/i);
  });

  it('explains a stage that ran out of time', () => {
    expect(describeFailure(inActivity(new TimeoutFailure('timed out', undefined, 'START_TO_CLOSE')))).toMatchObject({ type: 'Timeout' });
  });
});
