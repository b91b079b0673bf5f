import { StageName } from '../common/stages.js';
import type { ProgressReporter } from './progress-reporter.js';
import type { StageJob, StageProgress } from './stage-job.js';

/**
 * What each activities/stages/<name>.ts exports, for the stage of that name in the registry
 * (common/stages.ts): `run` in a stage thread, `discard` and `afterRun` in the activity.
 */
export interface StageModule {
  /** The stage's compute, in a worker thread; resolves to its result (checked against the descriptor's schema). */
  run(job: StageJob, progress: StageProgress): Promise<unknown>;
  /** Removes what a cancelled run of the stage wrote (work files, partial outputs). None: it writes nothing to remove. */
  discard?(job: StageJob): Promise<void>;
  /**
   * Work done in the activity after the thread, still heartbeating and cancellable (e.g. an external tool
   * beside the thread's result), resolving to the stage's final result.
   */
  afterRun?(job: StageJob, result: unknown, reporter: ProgressReporter<unknown>, signal: AbortSignal): Promise<unknown>;
}

/** A stage's module, by the stage's name (the file activities/stages/<name>.ts). */
export async function loadStageModule(name: string): Promise<StageModule> {
  // The name picks a file: only registry-shaped names, never a path.
  const file = new URL(`./stages/${StageName.parse(name)}.ts`, import.meta.url);
  const loaded = (await import(file.href)) as Partial<StageModule>;
  if (typeof loaded.run !== 'function') {
    throw new Error(`activities/stages/${name}.ts exports no run(job, progress); see docs/STAGES.md`);
  }
  return loaded as StageModule;
}
