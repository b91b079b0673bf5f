import { Router, type Response } from 'express';
import { z } from 'zod';
import { JobOptions, Preset, ProcessAssetInput } from '../common/jobs.js';
import type { JobLog } from '../common/job-log.js';
import { JobId } from '../common/progress.js';
import type { AssetStorage } from '../storage/asset-storage.js';
import { ownerOf } from './auth.js';
import type { JobService } from './job-service.js';
import { receiveUpload, UploadError } from './upload.js';

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  before: z.iso.datetime().optional(),
});

function notFound(res: Response): void {
  // The same answer whether the job does not exist or belongs to someone else.
  res.status(404).json({ error: { code: 'JOB_NOT_FOUND', message: 'No such job.' } });
}

/** REST routes for jobs. Every route acts for the token's owner and only on that owner's jobs. */
export function jobsRouter(deps: { jobs: JobService; jobLog: JobLog; storage: AssetStorage; uploadMaxBytes: number }): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const owner = ownerOf(res).id;
    const upload = await receiveUpload(req, deps.storage, deps.uploadMaxBytes);
    let options: JobOptions;
    try {
      const raw = upload.fields.options ? (JSON.parse(upload.fields.options) as unknown) : {};
      options = JobOptions.parse({ ...(raw as object), ...(upload.fields.preset ? { preset: upload.fields.preset } : {}) });
    } catch {
      throw new UploadError(
        400,
        'BAD_OPTIONS',
        `Options must be JSON like {"preset":"game-ready"}; presets: ${Preset.options.join(', ')}.`,
      );
    }
    const main = upload.files.find((f) => /\.(glb|gltf)$/i.test(f.name));
    if (!main) throw new UploadError(400, 'UPLOAD_NO_MODEL', 'The upload has no .glb or .gltf file.');
    const input = ProcessAssetInput.parse({ owner, assetName: main.name, files: upload.files, options });
    const jobId = await deps.jobs.start(input);
    req.log.info({ jobId, owner, asset: main.name, files: upload.files.length }, 'job started');
    res.status(202).location(`/api/jobs/${jobId}`).json({ jobId, assetName: main.name, files: upload.files });
  });

  router.get('/', async (req, res) => {
    const query = ListQuery.safeParse(req.query);
    if (!query.success) {
      res.status(400).json({ error: { code: 'BAD_QUERY', message: 'limit is 1-100 and before an ISO date-time.' } });
      return;
    }
    const { limit, before } = query.data;
    res.json(await deps.jobs.list(ownerOf(res).id, { limit, ...(before ? { before: new Date(before) } : {}) }));
  });

  router.get('/:id', async (req, res) => {
    const id = JobId.safeParse(req.params.id);
    const job = id.success ? await deps.jobs.describeOwned(ownerOf(res).id, id.data) : null;
    if (!job) return notFound(res);
    const { description: _description, ...summary } = job;
    const snapshot = await deps.jobLog.readSnapshot(job.jobId).catch(() => null);
    const result = summary.status === 'COMPLETED' ? await deps.jobs.result(job.jobId) : null;
    res.json({ ...summary, snapshot, result });
  });

  router.post('/:id/cancel', async (req, res) => {
    const id = JobId.safeParse(req.params.id);
    const job = id.success ? await deps.jobs.describeOwned(ownerOf(res).id, id.data) : null;
    if (!job) return notFound(res);
    if (job.status !== 'RUNNING') {
      res.status(409).json({ error: { code: 'JOB_NOT_RUNNING', message: `The job is already ${job.status.toLowerCase()}.` } });
      return;
    }
    await deps.jobs.cancel(job.jobId);
    res.status(202).json({ jobId: job.jobId, status: 'cancelling' });
  });

  return router;
}
