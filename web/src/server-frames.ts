import { z } from 'zod';
import { JobId } from '../../common/progress.js';
import { ServerMessage, SnapshotMessage } from '../../common/socket-protocol.js';
import { ApiErrorCode } from '../../common/failures.js';
import { PipelineReport } from '../../common/pipeline.js';
import { JobOutputsSchema, JobOutputSchema, JobPageSchema, JobSummarySchema, type AssetStats, type JobOutput } from '../../common/jobs.js';

/**
 * Schemas for what the page receives: socket frames (docs/PROTOCOL.md) and REST bodies. The page parses
 * every frame and body here, at its edge, and works with the inferred types inside.
 */

/** Every socket frame, parsed with the one schema the server's types come from (common/socket-protocol.ts). */
export const ServerFrame = ServerMessage;
export type ServerFrame = ServerMessage;

/** One job in GET /api/jobs and GET /api/jobs/:id: the same schema the API and the CLI use. */
export const JobSummaryBody = JobSummarySchema;
export type JobSummaryBody = z.infer<typeof JobSummaryBody>;

export const JobListBody = JobPageSchema;

export type AssetStatsBody = AssetStats;

/** One downloadable output, as GET /api/jobs/:id/outputs lists it (common/jobs.ts). */
export const OutputFileBody = JobOutputSchema;
export type OutputFileBody = JobOutput;

/** The completed job's report: the workflow's own result schema (common/pipeline.ts). */
export const JobReportBody = PipelineReport;
export type JobReportBody = PipelineReport;

export const JobDetailBody = JobSummaryBody.extend({
  snapshot: SnapshotMessage.pick({ seq: true, progress: true, event: true }).nullable().optional(),
  result: z.unknown().optional(),
});
export type JobDetailBody = z.infer<typeof JobDetailBody>;

/** GET /api/jobs/:id/outputs, as the list of its files. */
export const OutputListBody = JobOutputsSchema.transform((body) => body.outputs);

/** 202 from POST /api/jobs and, where the route exists, POST /api/jobs/:id/retry. */
export const StartedJobBody = z.object({ jobId: JobId, assetName: z.string().optional() });

export const ErrorBody = z.object({ error: z.object({ code: ApiErrorCode, message: z.string() }) });

export const DevLoginBody = z.object({ token: z.string().min(1), user: z.string().min(1) });
