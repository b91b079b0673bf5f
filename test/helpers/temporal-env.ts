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
  const start = () =>
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: path ? { type: 'existing-path', path } : { type: 'cached-download' } },
    });
  // The SDK's core starts the server process itself; once (of many runs) on a loaded two-core machine
  // that start failed with "Bad address (os error 14)" before the server ran. A second start is a new
  // process on a new port: how the test server starts is not what these suites test.
  const env = await start().catch((err: unknown) => {
    if (!String(err).includes('Failed to start ephemeral server')) throw err;
    console.warn(`[test] the time-skipping test server did not start (${String(err)}); starting it once more`);
    return start();
  });
  const types = temporal.api.enums.v1.IndexedValueType;
  const typeOf: Record<string, temporal.api.enums.v1.IndexedValueType> = {
    Keyword: types.INDEXED_VALUE_TYPE_KEYWORD,
    Bool: types.INDEXED_VALUE_TYPE_BOOL,
    Int: types.INDEXED_VALUE_TYPE_INT,
    Text: types.INDEXED_VALUE_TYPE_TEXT,
  };
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      Object.entries(readTemporalConfig().searchAttributes).map(([name, type]) => {
        const indexed = typeOf[type];
        if (indexed === undefined) throw new Error(`search-attributes.json: ${name} has type ${type}, which the tests do not map yet`);
        return [name, indexed];
      }),
    ),
  });
  return env;
}
