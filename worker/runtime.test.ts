import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { logMetadata } from './runtime.js';

describe('the Temporal SDK log metadata that reaches a line', () => {
  it('never carries the task token, a credential for completing or heartbeating the task', () => {
    const taskToken = Buffer.from('CiQ2ZTg5-any-opaque-token').toString('base64');
    const meta = logMetadata({ taskToken, activityId: '3', activityType: 'optimizeMesh', attempt: 2 });
    expect(meta).toEqual({ activityId: '3', activityType: 'optimizeMesh', attempt: 2 });
    expect(JSON.stringify(meta)).not.toContain(taskToken);
  });

  it("writes a workflow's error with its type, message and stack, not as {}", () => {
    // A workflow's error comes from its sandbox: an Error of another realm, with non-enumerable fields.
    const sandboxError = vm.runInNewContext('(() => { const e = new TypeError("stage output missing"); return e; })()') as Error;
    expect(JSON.stringify({ error: sandboxError })).toBe('{"error":{}}');
    const line = JSON.parse(JSON.stringify(logMetadata({ error: sandboxError, workflowId: 'asset-alice-1' }))) as {
      error: { type: string; message: string; stack: string };
      workflowId: string;
    };
    expect(line.error.message).toBe('stage output missing');
    expect(line.error.type).toBe('TypeError');
    expect(line.error.stack).toContain('stage output missing');
    expect(line.workflowId).toBe('asset-alice-1');
  });

  it('leaves everything else as it is', () => {
    expect(logMetadata(undefined)).toEqual({});
    expect(logMetadata({ error: 'a plain string', taskQueue: 'hpc' })).toEqual({ error: 'a plain string', taskQueue: 'hpc' });
  });
});
