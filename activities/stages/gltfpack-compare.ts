import { createRequire } from 'node:module';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { GltfpackComparison, PackageResult, PipelineSettings } from '../../common/pipeline.js';
import type { ProgressReporter } from '../progress-reporter.js';
import type { StageJob } from '../stage-job.js';
import { runExternalTool } from '../tools/external-tool.js';
import { gltfpackParser } from '../tools/gltfpack-parser.js';

const GLTFPACK_CLI = createRequire(import.meta.url).resolve('gltfpack/cli.js');

/**
 * gltfpack's flags closest to the pipeline's geometry settings for LOD0 (no simplification). The npm build
 * of gltfpack has no texture encoders ("built without WebP support"), so it keeps the upload's images: the
 * comparison that matters is geometry, reported apart from images (GltfpackComparison.imageBytes).
 */
export function gltfpackArgs(settings: PipelineSettings, input: string, output: string): string[] {
  const args = ['-v', '-i', input, '-o', output];
  if (settings.geometryCompression !== 'none') args.push('-cc');
  if (!settings.quantize) args.push('-noq');
  return args;
}

/**
 * Runs gltfpack (meshoptimizer's own tool) on the upload at the job's settings, as an external step of the
 * package stage, and records its size and time beside the pipeline's LOD0. Its GLB is a yardstick, not a
 * deliverable, so it stays in the work folder and is removed afterwards. Cancelling the job kills it.
 */
export async function compareWithGltfpack(
  job: StageJob,
  packaged: PackageResult,
  reporter: ProgressReporter<unknown>,
  signal: AbortSignal,
): Promise<PackageResult> {
  const output = path.join(job.workDir, 'gltfpack.glb');
  const args = gltfpackArgs(job.settings, path.join(job.inputDir, job.mainFile), output);
  const builtin = packaged.outputs.find((o) => o.kind === 'glb' && (o.level ?? 0) === 0);
  const started = performance.now();
  let imageBytes = 0;
  try {
    await runExternalTool({
      command: process.execPath,
      args: [GLTFPACK_CLI, ...args],
      parser: gltfpackParser,
      onLine: (line) => {
        const images = /^output: buffers: .*\bimage (\d+) bytes/.exec(line);
        if (images) imageBytes = Number(images[1]);
      },
      onProgress: (p) => reporter.note(`gltfpack for comparison: ${p.message}`),
      signal,
    });
    const bytes = (await fs.stat(output)).size;
    const builtinBytes = builtin?.bytes ?? 0;
    const comparison: GltfpackComparison = {
      args: args.map((a) => (a === output || a.startsWith(job.inputDir) ? path.basename(a) : a)),
      bytes,
      imageBytes,
      ms: Math.round(performance.now() - started),
      builtinBytes,
      ratio: builtinBytes ? Math.round((bytes / builtinBytes) * 1000) / 1000 : 0,
    };
    return { ...packaged, gltfpack: comparison };
  } finally {
    await fs.rm(output, { force: true });
  }
}
