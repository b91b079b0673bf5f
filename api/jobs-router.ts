import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { JobOptions, Preset, ProcessAssetInput, type JobInputs } from '../common/jobs.js';
import type { JobLog } from '../common/job-log.js';
import { JobId } from '../common/progress.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { fairShareKey } from '../common/job-priority.js';
import { ownerOf, type JobOwner } from './auth.js';
import { listOutputs, sendOutputsZip, sendStored } from './job-outputs.js';
import { isClosedStatus, type JobReconciler } from './job-reconciler.js';
import { decodeCursor, type JobSchedule, type JobService } from './job-service.js';
import { sendRateLimited, type SharedRateLimit } from './rate-limits.js';
import { MODEL_FILE, receiveUpload, UploadError, type UploadLimits } from './upload.js';
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

  /**
   * Where the owner's job goes among those waiting for the HPC machines: its priority (urgent only for
   * the users and the role configured), and the fair share of the owner or of their token's team.
   */
  function scheduleFor(owner: JobOwner, options: JobOptions): JobSchedule {
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
  async function mayStartJob(res: Response, owner: string): Promise<boolean> {
    const waitMs = await deps.submitLimit.take(owner);
    if (waitMs === 0) return true;
    sendRateLimited(res, waitMs, FAILURES.TOO_MANY_JOBS.code, 'Too many uploads and retries in a short time');
    return false;
  }

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
      if (!main) throw new UploadError(400, FAILURES.UPLOAD_NO_MODEL.code, 'The upload has no .glb or .gltf file.');
      input = ProcessAssetInput.parse({ owner, assetName: main.name, files: upload.files, options });
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
    if (!RETRYABLE.has(job.status)) {
      res.status(409).json({
        error: {
          code: FAILURES.JOB_NOT_RETRYABLE.code,
          message: `Only a failed, cancelled or stopped job can be retried; this one is ${job.status.toLowerCase()}.`,
        },
      });
      return;
    }
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
