/** Task queue polled only by the HPC machine's worker: every compute-heavy activity runs here. */
export const HPC_TASK_QUEUE = 'hpc';

/** Task queue for workflows and light activities (event publishing, cleanup bookkeeping). */
export const ORCHESTRATOR_TASK_QUEUE = 'orchestrator';
