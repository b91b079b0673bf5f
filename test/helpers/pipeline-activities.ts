import { activityInfo } from '@temporalio/activity';
import type { AssetStats } from '../../common/jobs.js';
import type {
  LodResult,
  OptimizeResult,
  PackageResult,
  PipelineActivities,
  TextureResult,
  ValidationSummary,
} from '../../common/pipeline.js';
import { BUILTIN_STAGES } from '../../common/stages.js';

/**
 * Mocked compute activities for workflow tests: the workflow's orchestration is what is under test,
 * and the failures it must handle (a crashed stage, a cancel mid-stage) cannot be caused on demand
 * with the real compute. Results are those of TwoCubes.glb.
 */
export const TWO_CUBES_STATS: AssetStats = {
  fileBytes: 2608,
  meshes: 2,
  primitives: 2,
  vertices: 48,
  triangles: 24,
  materials: 2,
  textures: [],
  extensionsUsed: [],
};
const VALIDATION: ValidationSummary = { errors: 0, warnings: 0, messages: [] };
export const TWO_CUBES_OPTIMIZE: OptimizeResult = { stats: TWO_CUBES_STATS, steps: ['dedup', 'weld', 'prune', 'quantize', 'meshopt'] };
const LODS: LodResult[] = [
  { level: 1, ratio: 0.5, targetTriangles: 12, triangles: 12 },
  { level: 2, ratio: 0.25, targetTriangles: 6, triangles: 12 },
];
const TEXTURES: TextureResult[] = [];
const PACKAGE: PackageResult = {
  outputs: [
    { name: 'TwoCubes_lod0.glb', bytes: 1800, sha256: 'a'.repeat(64), kind: 'glb', level: 0 },
    { name: 'report.json', bytes: 900, sha256: 'b'.repeat(64), kind: 'report' },
  ],
  validationErrors: 0,
  stats: TWO_CUBES_STATS,
};

export type PipelineActivityName = keyof PipelineActivities;

/** One call a mocked activity received. */
export interface PipelineCall {
  activity: PipelineActivityName;
  workflowId: string;
  attempt: number;
  request: unknown;
}

/**
 * Mocked PipelineActivities that record every call; `overrides` replace single activities, and
 * `beforeEach` (when given) runs after a call is recorded and before it does anything, e.g. to hold
 * every stage until the test lets it go.
 */
export function mockPipeline(overrides: Partial<PipelineActivities> = {}, beforeEach?: (call: PipelineCall) => Promise<void>) {
  const calls: PipelineCall[] = [];
  const defaults: PipelineActivities = {
    // A stage of the registry without a canned result below fails when called: a test that plans it passes one in overrides.
    ...(Object.fromEntries(
      BUILTIN_STAGES.map((stage) => [
        stage.activity,
        async () => {
          throw new Error(`mockPipeline has no result for the ${stage.name} stage; pass ${stage.activity} in overrides`);
        },
      ]),
    ) as unknown as PipelineActivities),
    inspectAsset: async () => TWO_CUBES_STATS,
    validateAsset: async () => VALIDATION,
    optimizeAsset: async () => TWO_CUBES_OPTIMIZE,
    buildLods: async () => LODS,
    processTextures: async () => TEXTURES,
    packageOutputs: async () => PACKAGE,
    cleanupJob: async () => undefined,
    deleteOutputs: async () => undefined,
  };
  const implementations = { ...defaults, ...overrides };
  const recorded = (name: PipelineActivityName) =>
    async function (request: never) {
      const info = activityInfo();
      const call: PipelineCall = { activity: name, workflowId: info.workflowExecution?.workflowId ?? '', attempt: info.attempt, request };
      calls.push(call);
      await beforeEach?.(call);
      return (implementations[name] as (request: never) => Promise<unknown>)(request);
    };
  const activities = Object.fromEntries(
    (Object.keys(defaults) as PipelineActivityName[]).map((name) => [name, recorded(name)]),
  ) as unknown as PipelineActivities; // built key by key from PipelineActivities' own keys above
  return {
    activities,
    calls,
    /** Names of the activities one workflow called, in order. */
    namesFor: (workflowId: string) => calls.filter((c) => c.workflowId === workflowId).map((c) => c.activity),
  };
}
