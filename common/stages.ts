import { z } from 'zod';
import type { Preset, StageRequest } from './jobs.js';
import { AssetStatsSchema, LodResult, OptimizeResult, PackageResult, TextureResult, ValidationSummary } from './pipeline.js';

/**
 * The stage registry: one descriptor per pipeline stage, the one list everything else derives from (the
 * workflow's stage plan, the HPC worker's activities and thread runners, the API's history mapping, the
 * page's and the CLI's stage lists, the benchmarks). Workflow-safe: zod and plain data only, no Node
 * imports (workflows/ bundles it). Adding a stage: docs/STAGES.md.
 */

/** A stage name: lowercase words joined by `-`, also the file name of its runner (activities/stages/<name>.ts). */
export const StageName = z
  .string()
  .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be lowercase letters and digits, words joined by "-" (e.g. "bake-lightmaps")')
  .max(40);

/** What a stage reads: the upload laid out in the work folder, and/or what earlier stages left there. */
export const StageReads = z.enum(['upload', 'work']);
/** Where a stage writes: the job's work folder (for later stages) and/or its output folder (the deliverables). */
export const StageWrites = z.enum(['work', 'outputs']);

/** A Temporal duration as text ("20 minutes", "2 hours", "30 seconds"). */
export const DurationText = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(ms|milliseconds?|s|seconds?|m|minutes?|h|hours?)$/, 'must be a duration like "20 minutes"');

/** One stage of the pipeline. `result` is the schema of what its activity returns (checked before it returns). */
export interface StageDescriptor<R extends z.ZodType = z.ZodType> {
  /** Stage name, as the artist sees it in progress and events. */
  readonly name: string;
  /** What the stage does to the asset, followed by its name in messages: "Building LODs of DamagedHelmet.glb". */
  readonly label: string;
  /** The Temporal activity type that runs it on the HPC queue. */
  readonly activity: string;
  /** Longest a single attempt may take. */
  readonly startToCloseTimeout: string;
  /** A dead HPC worker is noticed within this, and the stage retried from its last checkpoint. */
  readonly heartbeatTimeout: string;
  readonly reads: readonly z.infer<typeof StageReads>[];
  readonly writes: readonly z.infer<typeof StageWrites>[];
  readonly result: R;
  /** Presets whose jobs run it; all presets when absent. */
  readonly presets?: readonly Preset[];
  /**
   * File extensions (lowercase, no dot) of which the upload must hold at least one for the stage to run,
   * e.g. ['fbx', 'obj', 'blend'] for an import stage; every upload when absent.
   */
  readonly inputTypes?: readonly string[];
}

const HEARTBEAT = '30 seconds';
/** Reading, validating and packaging are bounded by the upload's size. */
const SHORT = '20 minutes';
/** Simplifying and re-encoding a dense asset can take long on a busy machine. */
const LONG = '2 hours';

/** The built-in stages, in pipeline order. */
export const BUILTIN_STAGES = [
  {
    name: 'inspect',
    label: 'Inspecting',
    activity: 'inspectAsset',
    startToCloseTimeout: SHORT,
    heartbeatTimeout: HEARTBEAT,
    reads: ['upload'],
    writes: ['work'],
    result: AssetStatsSchema,
  },
  {
    name: 'validate',
    label: 'Validating',
    activity: 'validateAsset',
    startToCloseTimeout: SHORT,
    heartbeatTimeout: HEARTBEAT,
    reads: ['upload', 'work'],
    writes: [],
    result: ValidationSummary,
  },
  {
    name: 'optimize',
    label: 'Optimising geometry of',
    activity: 'optimizeAsset',
    startToCloseTimeout: LONG,
    heartbeatTimeout: HEARTBEAT,
    reads: ['upload'],
    writes: ['work'],
    result: OptimizeResult,
  },
  {
    name: 'lods',
    label: 'Building LODs of',
    activity: 'buildLods',
    startToCloseTimeout: LONG,
    heartbeatTimeout: HEARTBEAT,
    reads: ['work'],
    writes: ['work'],
    result: z.array(LodResult),
  },
  {
    name: 'textures',
    label: 'Processing textures of',
    activity: 'processTextures',
    startToCloseTimeout: LONG,
    heartbeatTimeout: HEARTBEAT,
    reads: ['work'],
    writes: ['work'],
    result: z.array(TextureResult),
  },
  {
    name: 'package',
    label: 'Packaging',
    activity: 'packageOutputs',
    startToCloseTimeout: SHORT,
    heartbeatTimeout: HEARTBEAT,
    reads: ['upload', 'work'],
    writes: ['outputs'],
    result: PackageResult,
  },
] as const satisfies readonly StageDescriptor[];

export type BuiltinStage = (typeof BUILTIN_STAGES)[number];
export type BuiltinStageName = BuiltinStage['name'];
/** The result type of a built-in stage, by name. */
export type StageResultOf<N extends BuiltinStageName> = z.infer<Extract<BuiltinStage, { name: N }>['result']>;

/** Names of the built-in stages, in order (for views that show the stages before a job says its own). */
export const BUILTIN_STAGE_NAMES: readonly BuiltinStageName[] = BUILTIN_STAGES.map((s) => s.name);

/** The built-in stages' compute activities, typed by the registry: what the HPC worker implements. */
export type BuiltinStageActivities = {
  [D in BuiltinStage as D['activity']]: (request: StageRequest) => Promise<z.infer<D['result']>>;
};

/** A descriptor of the registry by stage name, or undefined. */
export function stageNamed(registry: readonly StageDescriptor[], name: string): StageDescriptor | undefined {
  return registry.find((s) => s.name === name);
}

/** Which stage each activity type runs, for a registry (the API's history view). */
export function stageOfActivity(registry: readonly StageDescriptor[]): ReadonlyMap<string, string> {
  return new Map(registry.map((s) => [s.activity, s.name]));
}

/**
 * One stage of a job's plan: what the workflow needs to schedule it. The plan is resolved when the job
 * starts and travels in the workflow input, so a job finishes with the stages it started with whatever a
 * later deploy or STAGES_CONFIG change does to the registry.
 */
export const PlannedStage = z.object({
  name: StageName,
  label: z.string().min(1).max(80),
  activity: z.string().min(1).max(120),
  startToCloseTimeout: DurationText,
  heartbeatTimeout: DurationText,
});
export type PlannedStage = z.infer<typeof PlannedStage>;

/** Stages every plan must contain, in this order: the report is built from their results. */
export const CORE_STAGES: readonly BuiltinStageName[] = ['inspect', 'validate', 'optimize', 'lods', 'textures', 'package'];

export const StagePlan = z
  .array(PlannedStage)
  .min(CORE_STAGES.length)
  .max(32)
  .superRefine((plan, ctx) => {
    const names = plan.map((s) => s.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', message: `stage names repeat: ${names.join(', ')}` });
    const core = names.filter((n) => (CORE_STAGES as readonly string[]).includes(n));
    if (core.join() !== CORE_STAGES.join())
      ctx.addIssue({ code: 'custom', message: `must contain ${CORE_STAGES.join(', ')} in that order; has ${names.join(', ')}` });
  });
export type StagePlan = z.infer<typeof StagePlan>;

/** What a job's plan depends on: its preset and the names of its uploaded files. */
export interface PlanFor {
  preset: Preset;
  fileNames: readonly string[];
}

/** The plan of a job: the registry's stages its preset and upload run, in registry order. */
export function planStages(registry: readonly StageDescriptor[], job: PlanFor): StagePlan {
  const types = new Set(job.fileNames.map((name) => /\.([^.]+)$/.exec(name)?.[1]?.toLowerCase() ?? ''));
  return StagePlan.parse(
    registry
      .filter((s) => !s.presets || s.presets.includes(job.preset))
      .filter((s) => !s.inputTypes || s.inputTypes.some((t) => types.has(t)))
      .map(({ name, label, activity, startToCloseTimeout, heartbeatTimeout }) => ({
        name,
        label,
        activity,
        startToCloseTimeout,
        heartbeatTimeout,
      })),
  );
}

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
