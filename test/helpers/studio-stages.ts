import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { PROJECT_ROOT, TOOLS_DIR } from '../../common/config.js';
import { whichSync } from '../../common/process-tie.js';

/** The shipped studio stage example (docs/STAGES.md): a Blender script after packaging. */
export const EXAMPLE_STAGES_CONFIG = path.join(PROJECT_ROOT, 'deploy', 'studio-stages', 'example.yaml');
/** The stand-in for a studio's tool in the tests (modes: ok, invalid, crash, exit-<n>, hang). */
export const STAND_IN_TOOL = fileURLToPath(new URL('../fixtures/stage-tool.mjs', import.meta.url));
/** The example needs Blender as the provisioned bpy module and python3.11. */
export const HAS_BPY = existsSync(path.join(TOOLS_DIR, 'bpy', 'bpy')) && whichSync('python3.11') !== null;

/**
 * The example config as it ships when this machine has Blender; else the same stage (placement, inputs,
 * outputs, presets) with the stand-in tool in Blender's place, so the path is proven either way.
 */
export function exampleStagesConfig(): string {
  if (HAS_BPY) return EXAMPLE_STAGES_CONFIG;
  const stage = (parseYaml(readFileSync(EXAMPLE_STAGES_CONFIG, 'utf8')) as { stages: Record<string, unknown>[] }).stages[0]!;
  const file = path.join(os.tmpdir(), `studio-stages-stand-in-${process.pid}.yaml`);
  const args = [STAND_IN_TOOL, 'ok', '{optimized}', '{outputDir}/{base}-blender-report.json'];
  writeFileSync(file, stringifyYaml({ stages: [{ ...stage, command: '{node}', args, env: undefined, progress: { parser: 'fraction' } }] }));
  return file;
}
