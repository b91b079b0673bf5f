import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Preset } from './jobs.js';
import {
  BUILTIN_STAGES,
  DurationText,
  ProcessProgress,
  ProcessSpec,
  ProcessStageResult,
  progressPatternProblem,
  type StageDescriptor,
  StageName,
  StageReads,
  StageWrites,
  unknownPlaceholders,
} from './stages.js';

/**
 * Studio stages: a studio's own steps (a Blender script, a baker, a validator) added to the pipeline by a
 * file (STAGES_CONFIG, YAML or JSON), no code change. Each becomes a process stage (common/stages.ts
 * ProcessSpec) placed before or after a stage already in the list. Read and checked once at start by the
 * API (which plans jobs with it) and the HPC worker (which runs it); docs/STAGES.md describes the fields.
 */

const StudioStage = z
  .strictObject({
    name: StageName,
    /** What it does to the asset, followed by the asset's name: "Checking names in DamagedHelmet.glb". */
    label: z.string().min(1).max(80),
    /** Where it runs: right after, or right before, this stage (a built-in one or one listed above). */
    after: StageName.optional(),
    before: StageName.optional(),
    command: ProcessSpec.shape.command,
    args: ProcessSpec.shape.args,
    progress: ProcessProgress.optional(),
    invalidInputExitCodes: ProcessSpec.shape.invalidInputExitCodes,
    outputs: ProcessSpec.shape.outputs,
    env: ProcessSpec.shape.env,
    reads: z.array(StageReads).max(3).default(['work']),
    writes: z.array(StageWrites).max(2).default([]),
    /** Presets whose jobs run it (all when absent). */
    presets: z.array(Preset).min(1).optional(),
    /** Uploads it runs for, by file extension (all when absent). */
    inputTypes: z
      .array(z.string().regex(/^[a-z0-9]+$/, 'must be a lowercase file extension without the dot'))
      .min(1)
      .optional(),
    /** One attempt's limit (default 30 minutes). */
    timeout: DurationText.default('30 minutes'),
  })
  .refine((s) => (s.after === undefined) !== (s.before === undefined), {
    message: 'give exactly one of "after" or "before": the stage it runs next to',
    path: ['after'],
  });
type StudioStage = z.infer<typeof StudioStage>;

const StudioStagesFile = z.strictObject({ stages: z.array(StudioStage).max(16) });

/** The file is missing, unreadable, or describes stages that cannot run; the message names the file and field. */
export class StagesConfigError extends Error {
  readonly code = 'STAGES_CONFIG_INVALID';
  constructor(file: string, problems: string[]) {
    super(`STAGES_CONFIG ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'StagesConfigError';
  }
}

/** `stages[1].args[2]` from a zod issue path. */
function fieldOf(issuePath: readonly PropertyKey[]): string {
  return issuePath.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('') || '(file)';
}

/** Problems zod cannot see: names taken, placements that do not exist, templates and patterns that cannot work. */
function problemsOf(stages: readonly StudioStage[]): string[] {
  const problems: string[] = [];
  const known = new Set<string>(BUILTIN_STAGES.map((s) => s.name));
  for (const [i, stage] of stages.entries()) {
    const at = `stages[${i}]`;
    if (known.has(stage.name)) problems.push(`${at}.name: "${stage.name}" is already a stage; choose another name`);
    const anchor = stage.after ?? stage.before!;
    if (!known.has(anchor)) {
      problems.push(`${at}.${stage.after ? 'after' : 'before'}: no stage "${anchor}" above it; stages are ${[...known].join(', ')}`);
    }
    known.add(stage.name);
    const templates: [string, string][] = [
      ['command', stage.command],
      ...stage.args.map((a, k): [string, string] => [`args[${k}]`, a]),
      ...stage.outputs.map((o, k): [string, string] => [`outputs[${k}]`, o]),
      ...Object.entries(stage.env ?? {}).map(([key, v]): [string, string] => [`env.${key}`, v]),
    ];
    for (const [field, template] of templates) {
      const unknown = unknownPlaceholders(template);
      if (unknown.length)
        problems.push(
          `${at}.${field}: unknown placeholder ${unknown.map((u) => `{${u}}`).join(', ')}; use {upload}, {optimized}, {lod0}, {inputDir}, {workDir}, {outputDir}, {base}, {assetName}, {jobId}, {node}, {toolsDir}, {configDir}, {settings.<name>} or {env.<NAME>}`,
        );
    }
    if (stage.outputs.length && !stage.writes.includes('outputs') && stage.outputs.some((o) => o.includes('{outputDir}')))
      problems.push(`${at}.writes: it lists outputs in {outputDir}, so it must say writes: [outputs]`);
    if ([...stage.args, stage.command].some((t) => t.includes('{lod0}')) && !stage.reads.includes('outputs'))
      problems.push(`${at}.reads: it uses {lod0}, a published output, so it must say reads: [outputs] (and run after "package")`);
    if (stage.progress && 'pattern' in stage.progress) {
      const problem = progressPatternProblem(stage.progress.pattern, stage.progress.total);
      if (problem) problems.push(`${at}.progress.pattern: ${problem}`);
    }
  }
  return problems;
}

/** One studio stage as a registry descriptor: a process stage with the farm's usual heartbeat. */
function descriptorOf(stage: StudioStage, configDir: string): StageDescriptor {
  const fill = (template: string) => template.replaceAll('{configDir}', configDir);
  return {
    name: stage.name,
    label: stage.label,
    activity: `studioStage.${stage.name}`,
    startToCloseTimeout: stage.timeout,
    heartbeatTimeout: '30 seconds',
    reads: stage.reads,
    writes: stage.writes,
    result: ProcessStageResult,
    ...(stage.presets ? { presets: stage.presets } : {}),
    ...(stage.inputTypes ? { inputTypes: stage.inputTypes } : {}),
    process: {
      command: fill(stage.command),
      args: stage.args.map(fill),
      ...(stage.progress ? { progress: stage.progress } : {}),
      invalidInputExitCodes: stage.invalidInputExitCodes,
      outputs: stage.outputs.map(fill),
      ...(stage.env ? { env: Object.fromEntries(Object.entries(stage.env).map(([k, v]) => [k, fill(v)])) } : {}),
    },
  };
}

/**
 * The stage registry with a studio's stages from `file` (YAML or JSON) placed among the built-in ones;
 * the built-in registry when no file is given. Throws StagesConfigError naming the file and each bad field.
 */
export function loadStageRegistry(file: string | undefined): StageDescriptor[] {
  const registry: StageDescriptor[] = [...BUILTIN_STAGES];
  if (!file) return registry;
  const absolute = path.resolve(file);
  let raw: unknown;
  try {
    const text = readFileSync(absolute, 'utf8');
    raw = /\.json$/i.test(absolute) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new StagesConfigError(absolute, [`cannot be read as ${/\.json$/i.test(absolute) ? 'JSON' : 'YAML'}: ${(err as Error).message}`]);
  }
  const parsed = StudioStagesFile.safeParse(raw);
  if (!parsed.success)
    throw new StagesConfigError(
      absolute,
      parsed.error.issues.map((i) => `${fieldOf(i.path)}: ${i.message}`),
    );
  const problems = problemsOf(parsed.data.stages);
  if (problems.length) throw new StagesConfigError(absolute, problems);
  for (const stage of parsed.data.stages) {
    const anchor = registry.findIndex((s) => s.name === (stage.after ?? stage.before));
    registry.splice(stage.after ? anchor + 1 : anchor, 0, descriptorOf(stage, path.dirname(absolute)));
  }
  return registry;
}
