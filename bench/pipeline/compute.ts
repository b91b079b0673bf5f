import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { runExternalTool } from '../../activities/tools/external-tool.js';
import { resolveSettings } from '../../common/pipeline.js';
import { CORE_STAGES } from '../../common/stages.js';
import { largeAsset, type LargeAssetSpec } from '../assets/large-asset.js';
import type { BenchContext } from '../lib/bench-context.js';
import { row, type BenchResult, type ResultRow } from '../lib/report.js';
import type { BenchChild } from '../lib/rpc.js';
import type { DirectRun } from './direct-pipeline.js';
import { glbGeometry, glbImageBytes, type GlbGeometry } from './glb-images.js';

const PRESET = 'game-ready' as const;
const MIB = 1024 * 1024;

/**
 * gltfpack arguments matching the preset's geometry (see BENCHMARKS.md): meshopt compression with
 * quantisation (-cc; gltfpack quantises by default) and -si <ratio> for each LOD. The npm build of
 * gltfpack has no WebP or BasisU encoder, so its textures stay as they were and only geometry is compared.
 */
export function gltfpackArgs(input: string, output: string, ratio: number | null): string[] {
  return ['-i', input, '-o', output, '-cc', ...(ratio === null ? [] : ['-si', String(ratio)])];
}

interface GltfpackLevel {
  ratio: number | null;
  ms: number;
  bytes: number;
  imageBytes: number;
  geometry: GlbGeometry;
}

/** Runs gltfpack once per level (LOD0 and each preset ratio); total time, bytes and geometry bytes of the GLBs written. */
async function runGltfpack(input: string): Promise<{ ms: number; bytes: number; geometryBytes: number; levels: GltfpackLevel[] }> {
  const cli = createRequire(import.meta.url).resolve('gltfpack/cli.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-gltfpack-'));
  try {
    const levels: GltfpackLevel[] = [];
    for (const ratio of [null, ...resolveSettings({ preset: PRESET }).lodRatios]) {
      const output = path.join(dir, `lod-${ratio ?? 0}.glb`);
      const t0 = performance.now();
      await runExternalTool({ command: process.execPath, args: [cli, ...gltfpackArgs(input, output, ratio)] });
      levels.push({
        ratio,
        ms: performance.now() - t0,
        bytes: statSync(output).size,
        imageBytes: glbImageBytes(output),
        geometry: glbGeometry(output),
      });
    }
    const sum = (f: (l: (typeof levels)[number]) => number) => levels.reduce((s, l) => s + f(l), 0);
    return { ms: sum((l) => l.ms), bytes: sum((l) => l.bytes), geometryBytes: sum((l) => l.bytes - l.imageBytes), levels };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One level's geometry as a log line: triangles, then stored bytes per stream and JSON. */
function describeLevel(geometry: GlbGeometry | null): string {
  if (!geometry) return 'missing';
  const streams = Object.entries(geometry.streams).map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(1)}`);
  return `${geometry.triangles} tris; KiB: ${[...streams, `json ${(geometry.jsonBytes / 1024).toFixed(1)}`].join(', ')}`;
}

function compactCount(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n);
}

/** The sizes benchmark 7 runs: 1M and 5M triangles with 8 textures at 4096² (smoke: tiny), or --triangles / --texture-size. */
export function computeSpecs(ctx: BenchContext): LargeAssetSpec[] {
  const triangles = ctx.scales.triangles ?? (ctx.smoke ? [20_000] : [1_000_000, 5_000_000]);
  const textureSize = ctx.scales.textureSize ?? (ctx.smoke ? 256 : 4096);
  const textures = ctx.smoke ? 2 : 8;
  return triangles.map((t) => ({ triangles: t, textures, textureSize, seed: 7 }));
}

/**
 * Benchmark 7: the pipeline on generated large assets, in one process (the six HPC activities through
 * MockActivityEnvironment, bench/pipeline/direct-pipeline.ts): time per stage, peak RSS of that process,
 * and the deliverables' total size and time beside gltfpack at comparable settings.
 */
export async function runCompute(ctx: BenchContext, direct: BenchChild): Promise<BenchResult> {
  const rows: ResultRow[] = [];
  const details: Record<string, unknown>[] = [];
  for (const spec of computeSpecs(ctx)) {
    const scale = `${compactCount(spec.triangles)} tris, ${spec.textures} × ${spec.textureSize}²`;
    const file = await largeAsset(spec);
    ctx.log(`compute: ${scale} (${(statSync(file).size / MIB).toFixed(1)} MiB)`);
    const runs: DirectRun[] = [];
    const packs: Awaited<ReturnType<typeof runGltfpack>>[] = [];
    for (let r = 0; r < ctx.repeats; r++) {
      runs.push(await direct.call<DirectRun>('run', { files: [file], options: { preset: PRESET }, jobs: 1, concurrency: 1 }, 3_600_000));
      packs.push(await runGltfpack(file));
      const job = runs.at(-1)!.jobs[0]!;
      ctx.log(
        `compute: ${scale}: ${CORE_STAGES.map((s) => `${s} ${((job.stageMs[s] ?? 0) / 1000).toFixed(1)} s`).join(', ')}; gltfpack ${(packs.at(-1)!.ms / 1000).toFixed(1)} s`,
      );
      ctx.log(
        `compute: ${scale}: peak RSS ${(runs.at(-1)!.peakRss / MIB).toFixed(0)} MiB; by stage ${CORE_STAGES.map((s) => `${s} ${((job.stagePeakRss[s] ?? 0) / MIB).toFixed(0)}`).join(', ')} MiB`,
      );
    }
    const jobs = runs.map((r) => r.jobs[0]!);
    for (const stage of CORE_STAGES)
      rows.push(
        row(
          `stage ${stage}`,
          scale,
          's',
          jobs.map((j) => (j.stageMs[stage] ?? 0) / 1000),
        ),
      );
    rows.push(
      row(
        'pipeline total',
        scale,
        's',
        jobs.map((j) => j.totalMs / 1000),
        { name: 'gltfpack, same levels', values: packs.map((p) => p.ms / 1000) },
      ),
    );
    rows.push(
      row(
        'peak RSS (in-process run)',
        scale,
        'MiB',
        runs.map((r) => r.peakRss / MIB),
      ),
    );
    const glbs = jobs.map((j) => j.outputs.filter((o) => o.kind === 'glb'));
    // Sizes compare fairly only at equal triangle counts: gltfpack's simplifier stops above the target when
    // its error limit (-se 0.01) is reached, ours goes on to the target (activities/stages/lods.ts).
    const levels = packs[0]!.levels.length;
    for (let level = 1; level < levels; level++) {
      rows.push(
        row(
          `LOD${level} triangles`,
          scale,
          'count',
          glbs.map((g) => g[level]?.geometry?.triangles ?? Number.NaN),
          { name: 'gltfpack', values: packs.map((p) => p.levels[level]!.geometry.triangles) },
        ),
      );
    }
    for (let level = 0; level < levels; level++) {
      ctx.log(`compute: ${scale}: LOD${level} ours: ${describeLevel(glbs[0]![level]?.geometry ?? null)}`);
      ctx.log(`compute: ${scale}: LOD${level} gltfpack: ${describeLevel(packs[0]!.levels[level]!.geometry)}`);
    }
    rows.push(
      row(
        'output geometry size (all LOD GLBs − images)',
        scale,
        'MiB',
        glbs.map((g) => g.reduce((s, o) => s + o.bytes - o.imageBytes, 0) / MIB),
        { name: 'gltfpack', values: packs.map((p) => p.geometryBytes / MIB) },
        { text: '≤ 1.10× gltfpack', met: (_m, ratio) => ratio <= 1.1 },
      ),
    );
    rows.push(
      row(
        'output size (all LOD GLBs, textures included)',
        scale,
        'MiB',
        glbs.map((g) => g.reduce((s, o) => s + o.bytes, 0) / MIB),
        { name: 'gltfpack (textures unchanged)', values: packs.map((p) => p.bytes / MIB) },
      ),
    );
    details.push({ spec, inputBytes: statSync(file).size, runs, gltfpack: packs });
  }
  return {
    id: 'compute',
    title: '7. Compute',
    status: 'ok',
    rows,
    details: { preset: PRESET, gltfpackArgs: gltfpackArgs('<in>', '<out>', 0.5), sizes: details },
    notes: [
      `preset ${PRESET}; gltfpack -cc, once for LOD0 and once per LOD ratio with -si; sizes are sums over the GLBs each writes, at the triangle counts in the LODn rows (gltfpack stops above the target when its -se 0.01 error limit is reached; a ratio below 1 there means gltfpack's level has more triangles than ours). Per-level, per-stream bytes of both are in the run's JSON (details.sizes[].runs[].jobs[].outputs[].geometry and gltfpack[].levels[].geometry). The npm gltfpack cannot encode WebP or KTX2, so the size target is checked on geometry (GLB bytes minus embedded images); the total with textures is shown for what it is (ours WebP ≤ 2048 px, gltfpack's the source PNGs).`,
    ],
  };
}
