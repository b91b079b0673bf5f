import type { BuiltinStageName, StagePlan } from './stages.js';

/*
 * What the workflows need of the stage registry (common/stages.ts) at run time, as plain data: no zod, as
 * every module the workflow bundle imports is evaluated again for each workflow the worker creates.
 */

export const HEARTBEAT = '30 seconds';
/** Reading, validating and packaging are bounded by the upload's size. */
export const SHORT = '20 minutes';
/** Simplifying and re-encoding a dense asset can take long on a busy machine. */
export const LONG = '2 hours';

/** Stages every plan must contain, in this order: the report is built from their results. */
export const CORE_STAGES: readonly BuiltinStageName[] = ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package'];

/**
 * The plan of a job started without one: every job started before the registry (and any caller that
 * gives none). Frozen on purpose, never derived from BUILTIN_STAGES: running jobs replay it, so it must
 * schedule exactly the activities, queues and timeouts those histories recorded.
 */
export const PLAN_BEFORE_REGISTRY: StagePlan = [
  { name: 'inspect', label: 'Inspecting', activity: 'inspectAsset', startToCloseTimeout: SHORT, heartbeatTimeout: HEARTBEAT },
  { name: 'validate', label: 'Validating', activity: 'validateAsset', startToCloseTimeout: SHORT, heartbeatTimeout: HEARTBEAT },
  { name: 'optimize', label: 'Optimising geometry of', activity: 'optimizeAsset', startToCloseTimeout: LONG, heartbeatTimeout: HEARTBEAT },
  { name: 'lods', label: 'Building LODs of', activity: 'buildLods', startToCloseTimeout: LONG, heartbeatTimeout: HEARTBEAT },
  {
    name: 'textures',
    label: 'Processing textures of',
    activity: 'processTextures',
    startToCloseTimeout: LONG,
    heartbeatTimeout: HEARTBEAT,
  },
  { name: 'package', label: 'Packaging', activity: 'packageOutputs', startToCloseTimeout: SHORT, heartbeatTimeout: HEARTBEAT },
];

/** The stage names of a job's plan (its own, or the one jobs without a plan run). */
export function stageNamesOf(plan: StagePlan | undefined): string[] {
  return (plan ?? PLAN_BEFORE_REGISTRY).map((s) => s.name);
}
