import { readdir, readFile } from 'node:fs/promises';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows, HISTORIES_DIR, SavedHistory } from '../test/helpers/workflow-workers.js';

/**
 * Jobs run for minutes to hours and expiry timers for days, so a deploy meets running workflows. Each
 * saved history (workflows/histories/, recorded by `npm run histories:update`) must replay on the
 * current code: a change that fails here would break running jobs and goes behind `patched()`.
 */
describe('saved workflow histories replay on the current workflow code', () => {
  let histories: (HistoryAndWorkflowId & { scenario: string })[];
  beforeAll(async () => {
    const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
    histories = await Promise.all(
      files.map(async (file) => {
        const saved = SavedHistory.parse(JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8')));
        return {
          scenario: file.replace(/\.json$/, ''),
          workflowId: saved.workflowId,
          // Decoded with the SDK's own proto classes: the replayer's JSON path (historyFromJSON) fails
          // on the second protobufjs copy installed for proto3-json-serializer.
          history: temporal.api.history.v1.History.fromObject(saved.history),
        };
      }),
    );
  });

  it('replays every saved history without a determinism error', async () => {
    expect(histories.map((h) => h.scenario)).toEqual(
      expect.arrayContaining([
        ...['process-asset-completed', 'process-asset-cancelled', 'process-asset-invalid', 'process-batch-one-invalid'],
        // Recorded before events became local activities (patch job-events-as-local-activities): jobs running at that deploy.
        ...['process-asset-completed', 'process-asset-cancelled', 'process-asset-invalid', 'process-batch-one-invalid'].map(
          (s) => `${s}.remote-events`,
        ),
        // Recorded on the code before the stage registry (jobs without a stage plan in their input): they run PLAN_BEFORE_REGISTRY.
        ...['process-asset-completed', 'process-asset-cancelled', 'process-asset-invalid'].map((s) => `${s}.before-stage-registry`),
        // Started with a plan holding a studio stage the built-in registry does not have: the plan travels in the input.
        'process-asset-with-studio-stage',
        // Recorded before patch job-input-checked-by-local-activity: the input checked in the workflow, no marker for it.
        ...[
          'process-asset-completed',
          'process-asset-cancelled',
          'process-asset-invalid',
          'process-asset-with-studio-stage',
          'process-batch-one-invalid',
        ].map((s) => `${s}.before-input-check`),
      ]),
    );
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await bundleWorkflows() }, histories)) {
      const scenario = histories.find((h) => h.workflowId === result.workflowId)?.scenario;
      if (result.error) failures.push(`${scenario}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
