import { z } from 'zod';
import { JobEventMessage, JobId, ProgressMessage } from '../../common/progress.js';
import type { ErrorMessage, SnapshotMessage, SubscribedMessage } from '../../common/socket-protocol.js';
import type { PipelineReport } from '../../common/pipeline.js';
import { AssetStatsSchema, JobPageSchema, JobSummarySchema } from '../../common/jobs.js';

/**
 * Schemas for what the page receives: socket frames (docs/PROTOCOL.md) and REST bodies. The page parses
 * every frame and body here, at its edge, and works with the inferred types inside.
 */

const SnapshotFrame = z.object({
  type: z.literal('snapshot'),
  jobId: JobId,
  seq: z.number().int().nonnegative(),
  progress: ProgressMessage.nullable(),
  event: JobEventMessage.nullable(),
});
const SubscribedFrame = z.object({ type: z.literal('subscribed'), jobId: JobId.optional(), all: z.literal(true).optional() });
const ErrorFrame = z.object({
  type: z.literal('error'),
  code: z.enum(['BAD_MESSAGE', 'JOB_NOT_FOUND', 'UNAVAILABLE', 'TOO_MANY_SUBSCRIPTIONS']),
  message: z.string(),
  jobId: JobId.optional(),
});

export const ServerFrame = z.discriminatedUnion('type', [ProgressMessage, JobEventMessage, SnapshotFrame, SubscribedFrame, ErrorFrame]);
export type ServerFrame = z.infer<typeof ServerFrame>;

// The socket schemas above must accept everything the server's own types allow.
type Accepts<Schema, Server> = Server extends Schema ? true : never;
const _snapshotMatches: Accepts<z.infer<typeof SnapshotFrame>, SnapshotMessage> = true;
const _subscribedMatches: Accepts<z.infer<typeof SubscribedFrame>, SubscribedMessage> = true;
const _errorMatches: Accepts<z.infer<typeof ErrorFrame>, ErrorMessage> = true;

/** One job in GET /api/jobs and GET /api/jobs/:id: the same schema the API and the CLI use. */
export const JobSummaryBody = JobSummarySchema;
export type JobSummaryBody = z.infer<typeof JobSummaryBody>;

export const JobListBody = JobPageSchema;

const AssetStatsBody = AssetStatsSchema;
export type AssetStatsBody = z.infer<typeof AssetStatsBody>;

const ImageSide = z.object({ width: z.number(), height: z.number(), bytes: z.number(), mimeType: z.string() });
/**
 * One downloadable output. The pipeline's OutputFile (common/pipeline.ts) carries bytes, kind and level;
 * a plain directory listing ({name, size}) is accepted too, with kind and level read from the file name.
 */
export const OutputFileBody = z
  .object({
    name: z.string().min(1),
    bytes: z.number().optional(),
    size: z.number().optional(),
    sha256: z.string().optional(),
    kind: z.enum(['glb', 'report']).optional(),
    level: z.number().int().optional(),
  })
  .transform((o) => {
    const lod = /lod(\d+)\.glb$/i.exec(o.name);
    return {
      name: o.name,
      bytes: o.bytes ?? o.size ?? 0,
      kind: o.kind ?? (/\.glb$/i.test(o.name) ? ('glb' as const) : ('report' as const)),
      level: o.level ?? (lod ? Number(lod[1]) : undefined),
    };
  });
export type OutputFileBody = z.output<typeof OutputFileBody>;

/**
 * The completed job's report. Every part past `input` is optional so the page also shows a report from a
 * pipeline that has not run every stage (the walking skeleton returns only `input`).
 */
export const JobReportBody = z.object({
  jobId: z.string(),
  assetName: z.string(),
  input: AssetStatsBody,
  settings: z.record(z.string(), z.unknown()).optional(),
  validation: z
    .object({
      errors: z.number(),
      warnings: z.number(),
      messages: z.array(
        z.object({
          code: z.string(),
          message: z.string(),
          severity: z.enum(['error', 'warning', 'info', 'hint']),
          pointer: z.string().optional(),
        }),
      ),
    })
    .optional(),
  optimize: z.object({ stats: AssetStatsBody, steps: z.array(z.string()) }).optional(),
  lods: z.array(z.object({ level: z.number(), ratio: z.number(), targetTriangles: z.number(), triangles: z.number() })).optional(),
  textures: z.array(z.object({ name: z.string(), before: ImageSide, after: ImageSide })).optional(),
  package: z.object({ outputs: z.array(OutputFileBody), validationErrors: z.number(), stats: AssetStatsBody }).optional(),
  expiresAt: z.string().optional(),
});
export type JobReportBody = z.infer<typeof JobReportBody>;
const _reportMatches: Accepts<z.input<typeof JobReportBody>, PipelineReport> = true;

export const JobDetailBody = JobSummaryBody.extend({
  snapshot: z.object({ seq: z.number(), progress: ProgressMessage.nullable(), event: JobEventMessage.nullable() }).nullable().optional(),
  result: z.unknown().optional(),
});
export type JobDetailBody = z.infer<typeof JobDetailBody>;

/** GET /api/jobs/:id/outputs: a list of files, bare or wrapped as {outputs}. */
export const OutputListBody = z.union([
  z.array(OutputFileBody),
  z.object({ outputs: z.array(OutputFileBody) }).transform((b) => b.outputs),
]);

/** 202 from POST /api/jobs and, where the route exists, POST /api/jobs/:id/retry. */
export const StartedJobBody = z.object({ jobId: JobId, assetName: z.string().optional() });

export const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export const DevLoginBody = z.object({ token: z.string().min(1), user: z.string().min(1) });
