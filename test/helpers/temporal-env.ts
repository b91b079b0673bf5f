import { TestWorkflowEnvironment } from '@temporalio/testing';
import { inject } from 'vitest';

/** Temporal's time-skipping test server, from the binary the global setup provisioned (or the SDK download). */
export function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = inject('testServerPath');
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: path ? { type: 'existing-path', path } : { type: 'cached-download' } },
  });
}
