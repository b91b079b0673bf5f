import { Worker } from 'node:worker_threads';
import type { ValidatorMessage } from '../common/pipeline.js';
import { deterministicFailure } from './invalid-asset-error.js';
import { type StageJob, StageThreadMessage } from './stage-job.js';

const BOOT = new URL('./stage-thread-boot.mjs', import.meta.url);
const ENTRY = new URL('./stage-thread-entry.ts', import.meta.url).href;
/** After a cancel, how long the thread may take to see its SIGKILLed processes exit (and reap them) before it is ended. */
const REAP_WAIT_MS = 1000;
/** An idle thread is ended after this long; a new one costs about a second of module loading. */
export const IDLE_MS = 30_000;
/**
 * Threads are retired after this many stages, so WASM heaps that never shrink cannot grow without bound.
 * The successor boots while the retiring thread runs its last stage (see acquireThread).
 */
export const MAX_STAGES_PER_THREAD = 25;

interface StageThread {
  worker: Worker;
  id: number;
  stagesRun: number;
  idleTimer: NodeJS.Timeout | null;
}

const alive = new Map<number, StageThread>();
const idle: StageThread[] = [];
const busy = new Set<number>();

/** Ids of stage threads that exist right now, busy or idle; tests use it to prove a cancelled thread is gone. */
export function aliveStageThreads(): number[] {
  return [...alive.keys()];
}

/** Ids of stage threads running a stage right now. */
export function busyStageThreads(): number[] {
  return [...busy];
}

/** A stage failed inside its thread; failureType is its catalogue code, which says whether retrying can help. */
export class StageFailedError extends Error {
  constructor(
    message: string,
    readonly failureType: string | null,
    readonly details: ValidatorMessage[],
    threadStack?: string,
  ) {
    super(message);
    this.name = 'StageFailedError';
    if (threadStack) this.stack = threadStack;
  }
}

export interface StageThreadEvents {
  onStart(total: number, unit: string, message: string): void;
  onProgress(done: number, message: string | undefined, checkpoint: unknown): void;
}

function spawnThread(): StageThread {
  const worker = new Worker(BOOT, { workerData: { entry: ENTRY } });
  const thread: StageThread = { worker, id: worker.threadId, stagesRun: 0, idleTimer: null };
  alive.set(thread.id, thread);
  // Errors are reported to the stage running at the time (if any) by its own listener.
  worker.on('error', () => undefined);
  worker.on('exit', () => {
    alive.delete(thread.id);
    busy.delete(thread.id);
    if (thread.idleTimer) clearTimeout(thread.idleTimer);
    const at = idle.indexOf(thread);
    if (at >= 0) idle.splice(at, 1);
  });
  return thread;
}

function acquireThread(): StageThread {
  const thread = idle.pop() ?? spawnThread();
  if (thread.idleTimer) clearTimeout(thread.idleTimer);
  thread.idleTimer = null;
  thread.stagesRun++;
  busy.add(thread.id);
  thread.worker.ref();
  // Its last stage: boot the successor now, so the next stage finds its libraries loaded instead of
  // waiting for them (benchmark 4 saw 1.1-1.6 s of module loading every 25 stages on a fresh thread).
  if (thread.stagesRun === MAX_STAGES_PER_THREAD) park(spawnThread());
  return thread;
}

/** Keeps a thread for the next stage; an idle thread must not keep the process alive, and ends unused after IDLE_MS. */
function park(thread: StageThread): void {
  thread.worker.unref();
  thread.idleTimer = setTimeout(() => {
    // Out of the idle list before it is ended: a thread exits some time after terminate() (longer with
    // a large heap), and a stage handed it meanwhile failed with "thread exited" (benchmark 7 hit this
    // when a job's inspect came 30 s after the previous job, the gltfpack comparison in between).
    const at = idle.indexOf(thread);
    if (at >= 0) idle.splice(at, 1);
    void thread.worker.terminate();
  }, IDLE_MS);
  thread.idleTimer.unref();
  idle.push(thread);
}

function releaseThread(thread: StageThread): void {
  busy.delete(thread.id);
  if (thread.stagesRun >= MAX_STAGES_PER_THREAD) {
    void thread.worker.terminate();
    return;
  }
  park(thread);
}

/**
 * Runs one stage's compute in a worker thread, so glTF and image work never blocks the event loop that
 * heartbeats. Threads are reused while idle (their libraries stay loaded). Aborting the signal terminates
 * the thread at once (V8 stops it even inside WASM) and rejects with the signal's reason once it has exited.
 */
export function runStageThread(job: StageJob, events: StageThreadEvents, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const thread = acquireThread();
    const { worker } = thread;
    // External processes the stage is running: a terminated thread cannot kill them, so this side does.
    const processes = new Set<number>();
    const killProcesses = () => {
      for (const pid of processes) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      processes.clear();
    };
    const detach = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      signal.removeEventListener('abort', onAbort);
    };
    const settle = (outcome: { ok: true; result: unknown } | { ok: false; error: unknown }) => {
      detach();
      releaseThread(thread);
      if (outcome.ok) resolve(outcome.result);
      else reject(outcome.error);
    };
    function onMessage(raw: unknown) {
      const parsed = StageThreadMessage.safeParse(raw);
      if (!parsed.success) {
        // A throw here would be uncaught and take the whole worker down; fail this stage and drop the thread.
        detach();
        void worker.terminate();
        reject(new Error(`The ${job.stage} thread sent a malformed message: ${parsed.error.message}`));
        return;
      }
      const message = parsed.data;
      switch (message.type) {
        case 'start':
          return events.onStart(message.total, message.unit, message.message);
        case 'progress':
          return events.onProgress(message.done, message.message, message.checkpoint);
        case 'process':
          if (message.running) processes.add(message.pid);
          else processes.delete(message.pid);
          return;
        case 'done':
          return settle({ ok: true, result: message.result });
        case 'failed':
          return settle({ ok: false, error: new StageFailedError(message.message, message.failureType, message.details, message.stack) });
      }
    }
    function onError(err: Error) {
      detach();
      killProcesses();
      // An exception thrown outside the stage's promise (glTF-Validator throws its stack overflows from a
      // timer) kills the thread; when it is one that recurs for this input, fail once, not per attempt.
      const known = deterministicFailure(err, job.mainFile);
      reject(known ? new StageFailedError(known.message, known.code, known.details, err.stack) : err);
    }
    function onExit(code: number) {
      detach();
      killProcesses();
      reject(new Error(`The ${job.stage} thread exited (code ${code}) before finishing`));
    }
    function onAbort() {
      detach();
      const killed = new Set(processes);
      killProcesses();
      // Settle only once the thread is gone, so "rejected" also means "no longer using the CPU". The
      // thread is ended only once it has seen its killed processes exit: only the thread that spawned a
      // child reaps it, and a child whose thread is gone stays a zombie until the worker process exits.
      void reaped(killed)
        .then(() => worker.terminate())
        .finally(() => reject(signal.reason));
    }
    /** Resolves when the thread reports each of these processes exited (it reaps them), or after REAP_WAIT_MS. */
    function reaped(pids: Set<number>): Promise<void> {
      if (pids.size === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          worker.off('message', onReaped);
          worker.off('exit', done);
          resolve();
        };
        const timer = setTimeout(done, REAP_WAIT_MS);
        function onReaped(raw: unknown) {
          const message = StageThreadMessage.safeParse(raw);
          if (message.success && message.data.type === 'process' && !message.data.running) pids.delete(message.data.pid);
          if (pids.size === 0) done();
        }
        worker.on('message', onReaped);
        worker.once('exit', done);
      });
    }
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      worker.postMessage({ job });
    }
  });
}
