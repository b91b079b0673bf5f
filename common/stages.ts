import { z } from 'zod';
import type { Preset, StageRequest } from './jobs.js';
import {
  AssetStatsSchema,
  ImportResult,
  LodResult,
  OptimizeResult,
  PackageResult,
  PreviewResult,
  TextureResult,
  ValidationSummary,
} from './pipeline.js';
import { CORE_STAGES, HEARTBEAT, LONG, SHORT } from './core-stages.js';

export { CORE_STAGES, PLAN_BEFORE_REGISTRY, stageNamesOf } from './core-stages.js';

/**
 * The stage registry: one descriptor per pipeline stage, the one list everything else derives from (the
 * workflow's stage plan, the HPC worker's activities and thread runners, the API's history mapping, the
 * page's and the CLI's stage lists, the benchmarks). Zod and plain data only, no Node imports; what the
 * workflows need at run time is in common/core-stages.ts, without zod. Adding a stage: docs/STAGES.md.
 */

/** A stage name: lowercase words joined by `-`, also the file name of its runner (activities/stages/<name>.ts). */
export const StageName = z
  .string()
  .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be lowercase letters and digits, words joined by "-" (e.g. "bake-lightmaps")')
  .max(40);

/**
 * What a stage reads: the upload laid out in job.inputDir, what earlier stages left in the work folder,
 * and/or the outputs published so far (LOD0 and the report, after packaging) in job.outputDir.
 */
export const StageReads = z.enum(['upload', 'work', 'outputs']);
/** Where a stage writes: the job's work folder (for later stages) and/or its output folder (the deliverables). */
export const StageWrites = z.enum(['work', 'outputs']);

/** A Temporal duration as text ("20 minutes", "2 hours", "30 seconds"). */
export const DurationText = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(ms|milliseconds?|s|seconds?|m|minutes?|h|hours?)$/, 'must be a duration like "20 minutes"');

/**
 * Names of the parsers that turn a process stage's output lines into progress
 * (activities/tools/progress-parsers.ts): `percent` reads "42%" or "42.5 %", `fraction` reads "3/12" or
 * "3 of 12", `gltfpack` reads gltfpack -v.
 */
export const ProgressParserName = z.enum(['percent', 'fraction', 'gltfpack']);

/** How a process stage's output lines become progress: a named parser, or a pattern of its own. */
export const ProcessProgress = z.union([
  z.strictObject({ parser: ProgressParserName }),
  z.strictObject({
    /** A regular expression with named groups `done` and `total`, or `percent`, matched against each line. */
    pattern: z.string().min(1).max(500),
    /** The total when the pattern has no `total` group (e.g. the frames of a turntable). */
    total: z.number().int().positive().optional(),
  }),
]);
export type ProcessProgress = z.infer<typeof ProcessProgress>;

/** A placeholder of a process stage's argument template: {upload}, {settings.maxTextureSize}, {env.BLENDER_PATH}… */
export const TEMPLATE_PLACEHOLDERS = [
  'upload',
  'optimized',
  'lod0',
  'inputDir',
  'workDir',
  'outputDir',
  'base',
  'assetName',
  'jobId',
  'node',
  'toolsDir',
  'configDir',
] as const;

/**
 * A stage that runs an external program in the activity instead of TypeScript in a thread. The command and
 * each argument are templates (no shell: one template, one argument); the process runs in its own process
 * group, which a cancel kills (SIGTERM, SIGKILL a second later).
 */
export const ProcessSpec = z.strictObject({
  /** The program: a path, a name on PATH, or a template such as "{env.BLENDER_PATH}" or "{node}". */
  command: z.string().min(1).max(1000),
  args: z.array(z.string().max(4000)).max(100).default([]),
  progress: ProcessProgress.optional(),
  /** Exit codes that mean "this input cannot be processed": not retried (default 65, sysexits' EX_DATAERR). */
  invalidInputExitCodes: z.array(z.number().int().min(1).max(255)).max(32).default([65]),
  /** Files (templates) the program must have written when it exits 0, e.g. "{outputDir}/{base}-thumbnail.png". */
  outputs: z.array(z.string().max(1000)).max(32).default([]),
  /** Extra environment variables (templates) for the program. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(4000)).optional(),
});
export type ProcessSpec = z.infer<typeof ProcessSpec>;

/** What a process stage returns: its exit code, how long it ran, and the files it had to write. */
export const ProcessStageResult = z.object({
  exitCode: z.number().int(),
  ms: z.number().nonnegative(),
  outputs: z.array(z.object({ name: z.string(), bytes: z.number().int().nonnegative() })),
});
export type ProcessStageResult = z.infer<typeof ProcessStageResult>;

/**
 * Why a progress pattern cannot work, or null when it can: it must compile, and have a named group
 * `percent`, or `done` with `total` (or a fixed total).
 */
export function progressPatternProblem(pattern: string, fixedTotal?: number): string | null {
  try {
    new RegExp(pattern);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
  const groups = new Set([...pattern.matchAll(/\(\?<([A-Za-z]+)>/g)].map((m) => m[1]));
  if (groups.has('percent') || (groups.has('done') && (groups.has('total') || fixedTotal))) return null;
  return 'needs a named group (?<percent>…), or (?<done>…) with (?<total>…) or a fixed "total"';
}

/** The placeholders of a template ("{upload}" → ["upload"]). */
export function templatePlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!);
}

/** Placeholders of a template this farm does not fill: empty when the template is good. */
export function unknownPlaceholders(template: string): string[] {
  return templatePlaceholders(template).filter(
    (name) =>
      !(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name) &&
      !/^settings\.[A-Za-z]+$/.test(name) &&
      !/^env\.[A-Za-z_][A-Za-z0-9_]*$/.test(name),
  );
}

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
  /** Runs this program instead of activities/stages/<name>.ts; its result is then ProcessStageResult. */
  readonly process?: ProcessSpec;
}

/** The built-in stages, in pipeline order. */
export const BUILTIN_STAGES = [
  {
    // FBX, OBJ (+ MTL, textures) and .blend become a GLB, read by every later stage as the upload.
    name: 'import',
    label: 'Importing',
    activity: 'importModel',
    startToCloseTimeout: SHORT,
    heartbeatTimeout: HEARTBEAT,
    reads: ['upload'],
    writes: ['work'],
    result: ImportResult,
    inputTypes: ['fbx', 'obj', 'blend'],
  },
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
  {
    // A turntable of the optimised LOD0 for review, added beside the packaged outputs. Bounded by
    // PREVIEW_FRAMES × PREVIEW_FRAME_SECONDS, far under SHORT.
    name: 'preview',
    label: 'Rendering a turntable of',
    activity: 'renderPreview',
    startToCloseTimeout: SHORT,
    heartbeatTimeout: HEARTBEAT,
    reads: ['work'],
    writes: ['outputs'],
    result: PreviewResult,
    presets: ['game-ready', 'mobile'],
  },
] as const satisfies readonly StageDescriptor[];

export type BuiltinStage = (typeof BUILTIN_STAGES)[number];
export type BuiltinStageName = BuiltinStage['name'];
/** The result type of a built-in stage, by name. */
export type StageResultOf<N extends BuiltinStageName> = z.infer<Extract<BuiltinStage, { name: N }>['result']>;

/**
 * Names of the built-in stages every job runs, in order (for views that show the stages before a job says
 * its own): those only some presets or uploads run (the import, the turntable preview) are left out.
 */
export const BUILTIN_STAGE_NAMES: readonly BuiltinStageName[] = BUILTIN_STAGES.filter((s) => !('inputTypes' in s || 'presets' in s)).map(
  (s) => s.name,
);

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
/** The stage that renders a job's turntable (Blender): what TURNTABLES=off leaves out of new plans. */
export const PREVIEW_STAGE = 'preview';

/** The registry the API plans new jobs from: all of it, or without the turntable when the studio turned it off. */
export function plannedStages(registry: readonly StageDescriptor[], { turntables }: { turntables: boolean }): readonly StageDescriptor[] {
  return turntables ? registry : registry.filter((s) => s.name !== PREVIEW_STAGE);
}

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
