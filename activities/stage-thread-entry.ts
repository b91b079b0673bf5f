import { parentPort } from 'node:worker_threads';
import { z } from 'zod';
import type { Stage } from '../common/pipeline.js';
import { FAILURES, isStorageError } from '../common/failures.js';
import { deterministicFailure } from './invalid-asset-error.js';
import { OutputInvalidError } from './output-error.js';
import { EncoderUnavailableError } from './tools/basisu.js';
import { BlenderInputError, BlenderUnavailableError } from './tools/blender.js';
import { StageJob, type StageProgress, type StageThreadMessage } from './stage-job.js';
import { inspectStage } from './stages/inspect.js';
import { lodsStage } from './stages/lods.js';
import { optimizeStage } from './stages/optimize.js';
import { packageStage } from './stages/package.js';
import { texturesStage } from './stages/textures.js';
import { validateStage } from './stages/validate.js';

/** Runs stages' compute inside a worker thread, one at a time, posting progress and outcome to the activity. */
const STAGE_RUNNERS: Record<Stage, (job: StageJob, progress: StageProgress) => Promise<unknown>> = {
  inspect: inspectStage,
  validate: validateStage,
  optimize: optimizeStage,
  lods: lodsStage,
  textures: texturesStage,
  package: packageStage,
};

const port = parentPort;
if (!port) throw new Error('stage-thread-entry runs only as a worker thread');
const post = (message: StageThreadMessage) => port.postMessage(message);
const Request = z.object({ job: StageJob });

port.on('message', (raw: unknown) => void runOne(raw));

async function runOne(raw: unknown): Promise<void> {
  let mainFile = 'The asset';
  try {
    const { job } = Request.parse(raw);
    mainFile = job.mainFile;
    const result = await STAGE_RUNNERS[job.stage](job, {
      start: (total, unit, message) => post({ type: 'start', total, unit, message }),
      update: (done, message, checkpoint) => post({ type: 'progress', done, message, checkpoint }),
      process: (pid, running) => post({ type: 'process', pid, running }),
    });
    post({ type: 'done', result });
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    // Failures that recur for this input are told apart here, once, so the first attempt is the last.
    const assetFailure = deterministicFailure(err, mainFile);
    post({
      type: 'failed',
      failureType:
        assetFailure?.code ??
        (err instanceof OutputInvalidError ||
        err instanceof EncoderUnavailableError ||
        err instanceof BlenderInputError ||
        err instanceof BlenderUnavailableError
          ? err.code
          : isStorageError(err)
            ? FAILURES.STORAGE.code
            : null),
      message: assetFailure?.message ?? error.message,
      details: assetFailure?.details ?? [],
      stack: error.stack,
    });
  }
}
