import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hpcWorkerSchema, loadConfig } from './config.js';
import { BUILTIN_STAGES, plannedStages, planStages, PREVIEW_STAGE } from './stages.js';
import { loadStageRegistry, StagesConfigError } from './studio-stages.js';

const EXAMPLE = fileURLToPath(new URL('../deploy/studio-stages/example.yaml', import.meta.url));
const dir = mkdtempSync(path.join(os.tmpdir(), 'studio-stages-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A studio stage that loads: the base every mistake below is made from. */
const GOOD = {
  name: 'check-naming',
  label: 'Checking names in',
  after: 'optimize',
  command: '{node}',
  args: ['check.mjs', '{optimized}', '{settings.maxTextureSize}'],
  progress: { pattern: '^(?<done>\\d+) of (?<total>\\d+)' },
  reads: ['work'],
  writes: [],
  timeout: '5 minutes',
};

let files = 0;
function configFile(stages: unknown[], ext: 'yaml' | 'json' = 'yaml'): string {
  const file = path.join(dir, `stages-${++files}.${ext}`);
  writeFileSync(file, ext === 'json' ? JSON.stringify({ stages }) : stringify({ stages }));
  return file;
}

function problemOf(file: string): string {
  try {
    loadStageRegistry(file);
  } catch (err) {
    expect(err).toBeInstanceOf(StagesConfigError);
    return (err as Error).message;
  }
  throw new Error(`${file} loaded, but it has a mistake`);
}

/** One mistake a studio can make, the field the error must name, and what it must say. */
const MISTAKES: { field: string; says: RegExp; make: (s: Record<string, unknown>) => Record<string, unknown> }[] = [
  { field: 'stages[0].name', says: /already a stage/, make: (s) => ({ ...s, name: 'lods' }) },
  { field: 'stages[0].name', says: /lowercase/, make: (s) => ({ ...s, name: 'Check Naming' }) },
  { field: 'stages[0].after', says: /no stage "optimise"/, make: (s) => ({ ...s, after: 'optimise' }) },
  { field: 'stages[0].after', says: /exactly one of "after" or "before"/, make: (s) => ({ ...s, before: 'lods' }) },
  { field: 'stages[0].after', says: /exactly one of "after" or "before"/, make: ({ after: _after, ...s }) => s },
  { field: 'stages[0].args[1]', says: /unknown placeholder \{optimised\}/, make: (s) => ({ ...s, args: ['check.mjs', '{optimised}'] }) },
  { field: 'stages[0].command', says: /unknown placeholder \{blender\}/, make: (s) => ({ ...s, command: '{blender}' }) },
  { field: 'stages[0].progress.pattern', says: /named group/, make: (s) => ({ ...s, progress: { pattern: '(\\d+)/(\\d+)' } }) },
  {
    field: 'stages[0].progress.pattern',
    says: /not a valid regular expression/,
    make: (s) => ({ ...s, progress: { pattern: '(?<done>\\d+' } }),
  },
  { field: 'stages[0].timeout', says: /duration/, make: (s) => ({ ...s, timeout: 'a while' }) },
  { field: 'stages[0].presets[0]', says: /game-ready/, make: (s) => ({ ...s, presets: ['ultra'] }) },
  { field: 'stages[0].reads[0]', says: /upload/, make: (s) => ({ ...s, reads: ['disk'] }) },
  { field: 'stages[0]', says: /colour/, make: (s) => ({ ...s, colour: 'red' }) },
  { field: 'stages[0].invalidInputExitCodes[0]', says: /255|less than/, make: (s) => ({ ...s, invalidInputExitCodes: [300] }) },
  { field: 'stages[0].reads', says: /\{lod0\}/, make: (s) => ({ ...s, args: ['{lod0}'] }) },
  { field: 'stages[0].writes', says: /writes: \[outputs\]/, make: (s) => ({ ...s, outputs: ['{outputDir}/{base}.json'] }) },
];

describe('studio stages from STAGES_CONFIG', () => {
  it('loads the shipped Blender example: after package, its script path filled in, run for game-ready and mobile only', () => {
    const registry = loadStageRegistry(EXAMPLE);
    const names = registry.map((s) => s.name);
    // Right after package, before the built-in stages that follow it (the turntable preview).
    const builtin = BUILTIN_STAGES.map((s) => s.name);
    const afterPackage = builtin.indexOf('package') + 1;
    expect(names).toEqual([...builtin.slice(0, afterPackage), 'blender-report', ...builtin.slice(afterPackage)]);
    const stage = registry.find((s) => s.name === 'blender-report')!;
    expect(stage).toMatchObject({
      activity: 'studioStage.blender-report',
      startToCloseTimeout: '10 minutes',
      reads: ['work'],
      writes: ['outputs'],
    });
    expect(stage.process?.args[0]).toBe(path.join(path.dirname(EXAMPLE), 'blender', 'asset-report.py'));
    expect(stage.process?.env).toEqual({ PYTHONPATH: '{toolsDir}/bpy' });
    expect(planStages(registry, { preset: 'mobile', fileNames: ['a.glb'] }).map((s) => s.name)).toContain('blender-report');
    expect(planStages(registry, { preset: 'archive', fileNames: ['a.glb'] }).map((s) => s.name)).not.toContain('blender-report');
  });

  it('places each stage where it says, in YAML or JSON, a later one next to an earlier one', () => {
    const registry = loadStageRegistry(
      configFile([GOOD, { ...GOOD, name: 'bake', after: undefined, before: 'check-naming', inputTypes: ['fbx'] }], 'json'),
    );
    expect(registry.map((s) => s.name)).toEqual([
      'import',
      'inspect',
      'validate',
      'optimize',
      'bake',
      'check-naming',
      'lods',
      'textures',
      'package',
      'preview',
    ]);
    // inputTypes: only an upload holding an .fbx runs it.
    expect(planStages(registry, { preset: 'game-ready', fileNames: ['a.glb'] }).map((s) => s.name)).not.toContain('bake');
    expect(planStages(registry, { preset: 'game-ready', fileNames: ['A.FBX'] }).map((s) => s.name)).toContain('bake');
  });

  it('leaves only the turntable out of new plans when turntables are off, studio stages included', () => {
    const registry = loadStageRegistry(configFile([GOOD, { ...GOOD, name: 'bake', after: 'package' }]));
    for (const preset of ['game-ready', 'mobile', 'archive'] as const) {
      for (const fileNames of [['a.glb'], ['A.FBX'], ['b.gltf', 'b.bin']]) {
        const all = planStages(registry, { preset, fileNames }).map((s) => s.name);
        const without = planStages(plannedStages(registry, { turntables: false }), { preset, fileNames }).map((s) => s.name);
        expect(without).toEqual(all.filter((name) => name !== PREVIEW_STAGE));
        expect(planStages(plannedStages(registry, { turntables: true }), { preset, fileNames }).map((s) => s.name)).toEqual(all);
      }
    }
    expect(planStages(registry, { preset: 'game-ready', fileNames: ['a.glb'] }).map((s) => s.name)).toContain(PREVIEW_STAGE);
  });

  it('names the file and the bad field for every kind of mistake, wherever the stage sits in the file', () => {
    fc.assert(
      fc.property(fc.constantFrom(...MISTAKES), fc.integer({ min: 0, max: 3 }), (mistake, position) => {
        // `position` good stages (each after the one before it) come first: the field's index follows.
        const before = Array.from({ length: position }, (_, i) => ({
          ...GOOD,
          name: `good-${i}`,
          after: i ? `good-${i - 1}` : 'optimize',
        }));
        const file = configFile([...before, mistake.make({ ...GOOD })]);
        const message = problemOf(file);
        expect(message).toContain(file);
        expect(message).toContain(`${mistake.field.replace('stages[0]', `stages[${position}]`)}`);
        expect(message).toMatch(mistake.says);
      }),
      { seed: 19, numRuns: 60 },
    );
  });

  it('says so when the file is missing or not YAML', () => {
    expect(problemOf(path.join(dir, 'nowhere.yaml'))).toMatch(/nowhere\.yaml:\n {2}cannot be read as YAML: ENOENT/);
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'stages: [ { name: x');
    expect(problemOf(broken)).toMatch(/broken\.yaml:\n {2}cannot be read as YAML/);
  });

  it('stops the HPC worker at start, naming STAGES_CONFIG, the file and the field', () => {
    const file = configFile([{ ...GOOD, after: 'nope' }]);
    expect(() => loadConfig(hpcWorkerSchema, { STAGES_CONFIG: file })).toThrow(
      /STAGES_CONFIG \(".*"\): STAGES_CONFIG .*\n {2}stages\[0\]\.after: no stage "nope"/,
    );
    expect(loadConfig(hpcWorkerSchema, { STAGES_CONFIG: EXAMPLE }).STAGES_CONFIG).toBe(EXAMPLE);
  });
});
