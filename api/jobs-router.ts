import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { JobOptions, MAX_BATCH_ASSETS, Preset, ProcessAssetInput, type JobInputs } from '../common/jobs.js';
import { JobStartBody } from '../common/uploads.js';
import type { JobLog } from '../common/job-log.js';
import { JobId } from '../common/progress.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { fairShareKey } from '../common/job-priority.js';
import { ownerOf, type JobOwner } from './auth.js';
import { listOutputs, sendOutputsZip, sendStored } from './job-outputs.js';
import { isClosedStatus, type JobReconciler } from './job-reconciler.js';
import { decodeCursor, type JobSchedule, type JobService } from './job-service.js';
import { sendRateLimited, type SharedRateLimit } from './rate-limits.js';
import { receiveUpload, UploadError, type ParsedUpload, type UploadLimits } from './upload.js';
import { MODEL_FILE, MODEL_FORMATS_IN_WORDS } from '../common/model-files.js';
import type { FinishedUploads } from './finished-uploads.js';
import { receiveUploadedAsset } from './uploaded-asset.js';
import { FAILURES } from '../common/failures.js';

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  before: z.string().max(512).optional(),
});

/** Statuses a job can be retried from: it ended without a result. */
const RETRYABLE = new Set(['FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT']);

function notFound(res: Response): void {
  // The same answer whether the job does not exist or belongs to someone else.
  res.status(404).json({ error: { code: FAILURES.JOB_NOT_FOUND.code, message: 'No such job.' } });
}

export interface JobsRouterDeps {
  jobs: JobService;
  jobLog: JobLog;
  reconciler: JobReconciler;
  storage: AssetStorage;
  /** Finished resumable uploads, which a JSON job start names by id. */
  finishedUploads: FinishedUploads;
  uploadLimits: UploadLimits;
  /** Uploads and retries per user: each starts a whole pipeline on the HPC machines. */
  submitLimit: SharedRateLimit;
  /** Called once per job this router started (upload or retry), for the jobs-started metric. */
  onJobStarted?: (preset: string) => void;
  /** Who may submit urgent jobs, and the fair-share weights (API_URGENT_USERS, API_URGENT_ROLE, FAIR_SHARE_WEIGHTS). */
  scheduling: { urgentUsers: readonly string[]; urgentRole: string; weights: ReadonlyMap<string, number> };
}

/**
 * Where the owner's job goes among those waiting for the HPC machines: its priority (urgent only for
 * the users and the role configured), and the fair share of the owner or of their token's team.
 */
function scheduleOf(deps: Pick<JobsRouterDeps, 'scheduling'>, owner: JobOwner, options: JobOptions): JobSchedule {
  const level = options.priority ?? 'normal';
  const { urgentUsers, urgentRole, weights } = deps.scheduling;
  if (level === 'urgent' && !urgentUsers.includes(owner.id) && !(owner.roles ?? []).includes(urgentRole))
    throw new UploadError(
      403,
      FAILURES.PRIORITY_NOT_ALLOWED.code,
      `${FAILURES.PRIORITY_NOT_ALLOWED.message} ${FAILURES.PRIORITY_NOT_ALLOWED.advice}`,
    );
  return { level, shareKey: fairShareKey(owner.id, owner.team), weights };
}

/** Takes a job start from the owner's limit; false after answering 429. */
async function mayStart(deps: Pick<JobsRouterDeps, 'submitLimit'>, res: Response, owner: string): Promise<boolean> {
  const waitMs = await deps.submitLimit.take(owner);
  if (waitMs === 0) return true;
  sendRateLimited(res, waitMs, FAILURES.TOO_MANY_JOBS.code, 'Too many uploads and retries in a short time');
  return false;
}

/** The job input of one uploaded asset: its options (400 BAD_OPTIONS) and its model file (400 UPLOAD_NO_MODEL). */
function assetInputOf(owner: string, upload: Pick<ParsedUpload, 'files' | 'fields'>): ProcessAssetInput {
  let options: JobOptions;
  try {
    const raw = upload.fields.options ? (JSON.parse(upload.fields.options) as unknown) : {};
    options = JobOptions.parse({ ...(raw as object), ...(upload.fields.preset ? { preset: upload.fields.preset } : {}) });
  } catch {
    throw new UploadError(
      400,
      FAILURES.BAD_OPTIONS.code,
      `Options must be JSON like {"preset":"game-ready"}; presets: ${Preset.options.join(', ')}.`,
    );
  }
  const main = upload.files.find((f) => MODEL_FILE.test(f.name));
  if (!main) throw new UploadError(400, FAILURES.UPLOAD_NO_MODEL.code, `The upload has no model file (${MODEL_FORMATS_IN_WORDS}).`);
  return ProcessAssetInput.parse({ owner, assetName: main.name, files: upload.files, options });
}

/** POST /api/batches: many assets, each its files as finished resumable uploads, with one set of options. */
const BatchStartBody = z.object({
  /** What the artist calls the batch (the dropped folder's name). */
  name: z.string().min(1).max(255).optional(),
  assets: z
    .array(JobStartBody.pick({ files: true }))
    .min(1)
    .max(MAX_BATCH_ASSETS),
  options: JobStartBody.shape.options,
  /** Most of its assets processed at once (the fair share still decides who gets each HPC slot). */
  concurrency: z.number().int().min(1).max(MAX_BATCH_ASSETS).optional(),
});

/** How many of a batch's assets run at once unless it says otherwise. */
const DEFAULT_BATCH_CONCURRENCY = 4;

/**
 * POST /api/batches: a folder, or many files grouped into assets, as one batch (processBatch): a job per
 * asset, a child of the batch, in the owner's id space. The batch takes one start from the owner's
 * limit; its fair share of the HPC machines is the owner's one share.
 */
export function batchesRouter(deps: JobsRouterDeps): Router {
  const router = Router();
  router.post('/', async (req, res) => {
    const owner = ownerOf(res);
    const body = BatchStartBody.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({
        error: {
          code: FAILURES.BAD_REQUEST.code,
          message: `Send {"name":"props","assets":[{"files":[{"uploadId":"…","name":"chair.glb"}]},…],"options":{…}}, 1 to ${MAX_BATCH_ASSETS} assets.`,
        },
      });
      return;
    }
    if (!(await mayStart(deps, res, owner.id))) return;
    const { assets, options, name, concurrency } = body.data;
    const inputs: ProcessAssetInput[] = [];
    for (const [i, asset] of assets.entries()) {
      try {
        const upload = await receiveUploadedAsset({ files: asset.files, ...(options ? { options } : {}) }, owner.id, {
          uploads: deps.finishedUploads,
          storage: deps.storage,
          limits: deps.uploadLimits,
        });
        inputs.push(assetInputOf(owner.id, upload));
      } catch (err) {
        // Which asset of the batch was refused, so the artist can fix that one.
        if (err instanceof UploadError) throw new UploadError(err.status, err.code, `Asset ${i + 1} of the batch: ${err.message}`);
        throw err;
      }
    }
    const schedule = scheduleOf(deps, owner, inputs[0]!.options);
    const batchName = name ?? `${inputs.length} assets`;
    const batchId = await deps.jobs.startBatch(owner.id, inputs, {
      schedule,
      concurrency: concurrency ?? DEFAULT_BATCH_CONCURRENCY,
      name: batchName,
    });
    for (const input of inputs) deps.onJobStarted?.(input.options.preset);
    req.log.info({ batchId, owner: owner.id, assets: inputs.length }, 'batch started');
    res
      .status(202)
      .location(`/api/jobs/${batchId}`)
      .json({ jobId: batchId, kind: 'batch', name: batchName, assets: inputs.map((a) => a.assetName) });
  });
  return router;
}

/** REST routes for jobs. Every route acts for the token's owner and only on that owner's jobs. */
export function jobsRouter(deps: JobsRouterDeps): Router {
  const router = Router();

  /** The caller's job named in the URL, or null after answering 404 (also for another user's job). */
  async function ownedJob(req: Request, res: Response) {
    const id = JobId.safeParse(req.params.id);
    const job = id.success ? await deps.jobs.describeOwned(ownerOf(res).id, id.data) : null;
    if (!job) notFound(res);
    return job;
  }

  const scheduleFor = (owner: JobOwner, options: JobOptions) => scheduleOf(deps, owner, options);
  const mayStartJob = (res: Response, owner: string) => mayStart(deps, res, owner);

  router.post('/', async (req, res) => {
    const owner = ownerOf(res).id;
    // Checked before reading the body, so a refused upload costs no disk.
    if (!(await mayStartJob(res, owner))) {
      req.resume();
      return;
    }
    // JSON names finished resumable uploads (POST /api/uploads); multipart carries the files themselves.
    const upload = req.is('application/json')
      ? await receiveUploadedAsset(req.body, owner, { uploads: deps.finishedUploads, storage: deps.storage, limits: deps.uploadLimits })
      : await receiveUpload(req, deps.storage, deps.uploadLimits);
    let input: ProcessAssetInput;
    let schedule: JobSchedule;
    try {
      input = assetInputOf(owner, upload);
      schedule = scheduleFor(ownerOf(res), input.options);
    } catch (err) {
      // Refused after the files were stored: no job will use them.
      await upload.settle('discarded');
      throw err;
    }
    // Kept even when starting fails: a start that timed out may still have created the workflow.
    const jobId = await deps.jobs.start(input, schedule).finally(() => void upload.settle('kept'));
    deps.onJobStarted?.(input.options.preset);
    req.log.info({ jobId, owner, asset: input.assetName, files: upload.files.length }, 'job started');
    res.status(202).location(`/api/jobs/${jobId}`).json({ jobId, assetName: input.assetName, files: upload.files });
  });

  router.get('/', async (req, res) => {
    const query = ListQuery.safeParse(req.query);
    if (!query.success) {
      res.status(400).json({ error: { code: FAILURES.BAD_QUERY.code, message: 'limit is 1-100 and before an ISO date-time.' } });
      return;
    }
    const { limit, before } = query.data;
    const cursor = before !== undefined ? decodeCursor(before) : undefined;
    if (cursor === null) {
      res
        .status(400)
        .json({ error: { code: FAILURES.BAD_QUERY.code, message: 'before must be the nextBefore value of a previous page.' } });
      return;
    }
    res.json(await deps.jobs.list(ownerOf(res).id, { limit, ...(cursor ? { before: cursor } : {}) }));
  });

  router.get('/:id', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    const { description, owner, ...summary } = job;
    // Closed without its terminal event, or reset in Temporal: make the snapshot below say so.
    if ((isClosedStatus(job.status) || job.status === 'RUNNING') && owner) {
      await deps.reconciler
        .reconcile({ jobId: job.jobId, owner, assetName: job.assetName, status: job.status, runId: description.runId })
        .catch((err: unknown) => req.log.warn({ err, jobId: job.jobId }, 'could not reconcile the job in Redis'));
    }
    const snapshot = await deps.jobLog.readSnapshot(job.jobId).catch((err: unknown) => {
      req.log.warn({ err, jobId: job.jobId }, 'job snapshot unavailable');
      return null;
    });
    const result = summary.status === 'COMPLETED' ? await deps.jobs.result(job.jobId) : null;
    res.json({ ...summary, snapshot, result });
  });

  router.post('/:id/cancel', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    if (job.status !== 'RUNNING') {
      res.status(409).json({ error: { code: FAILURES.JOB_NOT_RUNNING.code, message: `The job is already ${job.status.toLowerCase()}.` } });
      return;
    }
    // The workflow publishes `cancelling` as it takes the request (once, however it was cancelled) and
    // `cancelled` when its cleanup is done.
    await deps.jobs.cancel(job.jobId);
    res.status(202).json({ jobId: job.jobId, status: 'cancelling' });
  });

  router.post('/:id/retry', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    // A batch that completed may still hold failed assets: retrying it retries those.
    if (!RETRYABLE.has(job.status) && !(job.kind === 'batch' && job.status === 'COMPLETED')) {
      res.status(409).json({
        error: {
          code: FAILURES.JOB_NOT_RETRYABLE.code,
          message: `Only a failed, cancelled or stopped job can be retried; this one is ${job.status.toLowerCase()}.`,
        },
      });
      return;
    }
    if (job.kind === 'batch') return retryBatch(req, res, job.jobId, job.assetName);
    const input = await deps.jobs.inputOf(job.jobId);
    if (input.owner !== ownerOf(res).id) return notFound(res);
    const schedule = scheduleFor(ownerOf(res), input.options);
    if (!(await mayStartJob(res, input.owner))) return;
    // The retry says what it retries, who asked and when: in its memo, and as AssetRetryOf for the UI's query.
    const jobId = await deps.jobs.start(input, schedule, { retryOf: job.jobId, by: input.owner, at: new Date().toISOString() });
    deps.onJobStarted?.(input.options.preset);
    req.log.info({ jobId, retryOf: job.jobId, owner: input.owner }, 'job retried');
    res.status(202).location(`/api/jobs/${jobId}`).json({ jobId, retryOf: job.jobId, assetName: input.assetName });
  });

  /** A new batch of only the batch's assets that did not complete, recorded as its retry. */
  async function retryBatch(req: Request, res: Response, batchId: string, batchName: string): Promise<void> {
    const owner = ownerOf(res);
    const [batch, children] = await Promise.all([deps.jobs.batchInputOf(batchId), deps.jobs.childrenOf(batchId)]);
    if (batch.owner !== owner.id) return notFound(res);
    const unfinished = children.filter((c) => c.status !== 'COMPLETED' && c.status !== 'RUNNING');
    // Assets the batch never started (it was cancelled first) are retried too. It starts them in order,
    // so those are the last ones.
    const inputs = [...(await Promise.all(unfinished.map((c) => deps.jobs.inputOf(c.jobId)))), ...batch.assets.slice(children.length)].map(
      ({ plan: _plan, ...input }) => input,
    );
    if (inputs.length === 0) {
      res.status(409).json({ error: { code: FAILURES.JOB_NOT_RETRYABLE.code, message: 'Every asset of this batch completed.' } });
      return;
    }
    if (!(await mayStartJob(res, owner.id))) return;
    const name = `${batchName} (retry)`;
    const retryId = await deps.jobs.startBatch(owner.id, inputs, {
      schedule: scheduleOf(deps, owner, inputs[0]!.options),
      concurrency: batch.concurrency,
      name,
      retry: { retryOf: batchId, by: owner.id, at: new Date().toISOString() },
    });
    req.log.info({ jobId: retryId, retryOf: batchId, owner: owner.id, assets: inputs.length }, 'batch retried');
    res
      .status(202)
      .location(`/api/jobs/${retryId}`)
      .json({ jobId: retryId, retryOf: batchId, kind: 'batch', assets: inputs.map((a) => a.assetName) });
  }

  // Outputs are read from storage only, after the ownership check: the API reads no worker's disk.
  router.get('/:id/outputs', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    res.json({ jobId: job.jobId, outputs: await listOutputs(deps.storage, job.jobId) });
  });

  router.get('/:id/outputs.zip', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    const outputs = await listOutputs(deps.storage, job.jobId);
    if (outputs.length === 0) {
      res.status(404).json({ error: { code: FAILURES.NO_OUTPUTS.code, message: 'This job has no outputs yet.' } });
      return;
    }
    await sendOutputsZip(res, deps.storage, job.jobId, outputs, `${job.jobId}.zip`);
  });

  router.get('/:id/outputs/*name', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    const raw = (req.params as { name?: string | string[] }).name;
    const name = Array.isArray(raw) ? raw.join('/') : (raw ?? '');
    const file = await deps.storage.openOutput(job.jobId, name);
    if (!file) {
      res
        .status(404)
        .json({ error: { code: FAILURES.OUTPUT_NOT_FOUND.code, message: 'This job has no such output; list them at its /outputs.' } });
      return;
    }
    await sendStored(res, file, name);
  });

  // The artist's own upload, as sent: the page's "before" view after a reload or in another tab. A .gltf
  // names its .bin and textures by relative URI, and they sit beside it here under the same names.
  router.get('/:id/inputs', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    const input = await deps.jobs.inputOf(job.jobId);
    const body: JobInputs = { jobId: job.jobId, model: input.assetName, inputs: input.files.map((f) => ({ name: f.name, size: f.size })) };
    res.json(body);
  });

  router.get('/:id/inputs/:name', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!job) return;
    const input = await deps.jobs.inputOf(job.jobId);
    const file = input.files.find((f) => f.name === req.params.name);
    const stored = file ? await deps.storage.openUpload(file) : null;
    if (!file || !stored) {
      res
        .status(404)
        .json({ error: { code: FAILURES.INPUT_NOT_FOUND.code, message: 'This job has no such uploaded file; list them at its /inputs.' } });
      return;
    }
    await sendStored(res, stored, file.name);
  });

  return router;
}
