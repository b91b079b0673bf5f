import { z } from 'zod';
import { JobPageSchema, JobSummarySchema } from '../common/jobs.js';

/** Shapes of the API's answers, parsed at the edge so the commands work with checked types (api/jobs-router.ts). */

export const ApiErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export const DevLoginAnswer = z.object({ token: z.string().min(1), user: z.string() });

export const SubmitAnswer = z.object({
  jobId: z.string(),
  assetName: z.string(),
  files: z.array(z.object({ name: z.string(), sha256: z.string(), size: z.number() })),
});
export type SubmitAnswer = z.infer<typeof SubmitAnswer>;

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

/** One downloadable output (common/pipeline.ts OutputFile). Names are checked before they become paths. */
export const OutputFile = z.object({
  name: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[^/\\\0]+$/)
    .refine((n) => n !== '.' && n !== '..'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  kind: z.string(),
  level: z.number().int().nonnegative().optional(),
});
export type OutputFile = z.infer<typeof OutputFile>;

/** The outputs listing, as a bare array or wrapped in {outputs}: either shape is accepted. */
export const OutputListing = z
  .union([z.array(OutputFile), z.object({ outputs: z.array(OutputFile) }).loose()])
  .transform((v) => (Array.isArray(v) ? v : v.outputs));
