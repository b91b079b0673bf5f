import { z } from 'zod';
import { ApiErrorCode } from '../common/failures.js';
import { JobOutputsSchema, JobOutputSchema, JobPageSchema, JobSummarySchema } from '../common/jobs.js';

/** Shapes of the API's answers, parsed at the edge so the commands work with checked types (api/jobs-router.ts). */

export const ApiErrorBody = z.object({ error: z.object({ code: ApiErrorCode, message: z.string() }) });

export const DevLoginAnswer = z.object({ token: z.string().min(1), user: z.string() });

export const SubmitAnswer = z.object({
  jobId: z.string(),
  assetName: z.string(),
  files: z.array(z.object({ name: z.string(), sha256: z.string(), size: z.number() })),
});
export type SubmitAnswer = z.infer<typeof SubmitAnswer>;

/** 202 from POST /api/batches: the batch's id (a job id of the owner) and its assets' names. */
export const BatchAnswer = z.object({ jobId: z.string(), kind: z.literal('batch'), name: z.string(), assets: z.array(z.string()) });

/** A job as GET /api/jobs lists it (one schema with the API and the page: common/jobs.ts). */
export const JobSummary = JobSummarySchema;
export type JobSummary = z.infer<typeof JobSummary>;

export const JobPage = JobPageSchema;
export type JobPage = z.infer<typeof JobPage>;

/** GET /api/jobs/:id: the summary with the latest progress snapshot and, once completed, the result. */
export const JobDetail = JobSummary.extend({ snapshot: z.unknown().nullable(), result: z.unknown().nullable() });
export type JobDetail = z.infer<typeof JobDetail>;

export const CancelAnswer = z.object({ jobId: z.string(), status: z.string() });
export const RetryAnswer = z.object({ jobId: z.string() }).loose();

/** One downloadable output (common/jobs.ts). Names are checked again before they become paths. */
export const OutputFile = JobOutputSchema.extend({
  name: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\\0]+$/)
    .refine((n) => n !== '.' && n !== '..'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type OutputFile = z.infer<typeof OutputFile>;

/** GET /api/jobs/:id/outputs, as the list of its files. */
export const OutputListing = JobOutputsSchema.extend({ outputs: z.array(OutputFile) }).transform((body) => body.outputs);
