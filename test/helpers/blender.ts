import { inject } from 'vitest';
import type { BlenderRuntime } from '../../activities/tools/blender.js';

/**
 * The Blender that test/global-setup.ts provisioned. A machine without one fails the Blender tests with
 * this message instead of skipping them: the formats it serves are part of the product.
 */
export function provisionedBlender(): BlenderRuntime {
  const blender = inject('blender');
  if (!blender) {
    throw new Error(
      'No Blender to test with: set BLENDER_PATH, or install python3.11 with pip and run `npm run provision` (RUNBOOK.md, "Blender").',
    );
  }
  return blender;
}

/** True while a process with this id exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while any process of this process group exists. */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
