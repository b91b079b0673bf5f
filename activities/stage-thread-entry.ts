import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { z } from 'zod';
import { FAILURES, isStorageError } from '../common/failures.js';
import { deterministicFailure } from './invalid-asset-error.js';
import { OutputInvalidError } from './output-error.js';
import { EncoderUnavailableError } from './tools/basisu.js';
import { BlenderInputError, BlenderUnavailableError } from './tools/blender.js';
import { StageJob, type StageProgress, type StageThreadMessage } from './stage-job.js';
import { loadStageModule } from './stage-module.js';

/**
 * Runs stages' compute inside a worker thread, one at a time, posting progress and outcome to the
 * activity. Each stage's runner is its module's `run` (activities/stages/<name>.ts), loaded on first use
 * and kept loaded with the thread.
 */
const runners = new Map<string, (job: StageJob, progress: StageProgress) => Promise<unknown>>();
async function runnerOf(stage: string) {
  let runner = runners.get(stage);
  if (!runner) {
    runner = (await loadStageModule(stage)).run;
    runners.set(stage, runner);
  }
  return runner;
}

/**
 * A full garbage collection of this thread. A stage leaves its asset behind as garbage (a 366 MiB upload
 * read twice is ~1 GiB of array buffers), and V8 collects it only under pressure, which the next stage's
 * own reads then add to: at 1M triangles + 8 × 4096² optimize started with 774 MiB of the inspect stage's
 * buffers still uncollected. Collected once the outcome is posted, while the thread is idle; the flag
 * only makes `gc` available to a new context (the usual way to reach it without --expose-gc for the process).
 */
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const port = parentPort;
if (!port) throw new Error('stage-thread-entry runs only as a worker thread');
const post = (message: StageThreadMessage) => port.postMessage(message);
const Request = z.object({ job: StageJob });

port.on('message', (raw: unknown) => void runOne(raw).finally(collectGarbage));

async function runOne(raw: unknown): Promise<void> {
  let mainFile = 'The asset';
  try {
    const { job } = Request.parse(raw);
    mainFile = job.mainFile;
    const result = await (
      await runnerOf(job.stage)
    )(job, {
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
