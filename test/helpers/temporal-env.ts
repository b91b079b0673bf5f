import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { inject } from 'vitest';
import { readTemporalConfig } from '../../scripts/lib/temporal-server.js';

/**
 * Temporal's time-skipping test server, from the binary the global setup provisioned (or the SDK download),
 * with the project's search attributes registered: the server rejects an upsert of an unknown one.
 */
export async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = inject('testServerPath');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: path ? { type: 'existing-path', path } : { type: 'cached-download' } },
  });
  const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.keys(readTemporalConfig().searchAttributes).map((name) => [name, keyword])),
  });
  return env;
}
