import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listTextureSlots } from '@gltf-transform/functions';
import {
  KHR_DF_MODEL_ETC1S,
  KHR_DF_MODEL_UASTC,
  KHR_DF_TRANSFER_LINEAR,
  KHR_DF_TRANSFER_SRGB,
  KHR_SUPERCOMPRESSION_BASISLZ,
  KHR_SUPERCOMPRESSION_NONE,
  KHR_SUPERCOMPRESSION_ZSTD,
  read as readKtx2,
} from 'ktx-parse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../scripts/lib/wait.js';
import type { StageJob } from './stage-job.js';
import { runStageThread } from './stage-thread.js';
import { inspectStage } from './stages/inspect.js';
import { optimizeStage } from './stages/optimize.js';
import { validateStage } from './stages/validate.js';
import { failureOf } from '../common/failures.js';
import { resolveSettings } from '../common/pipeline.js';
import { assetIO, KNOWN_EXTENSIONS } from './asset-io.js';
import { basisuImageProblem, checkKtx2Images, validateGltfBytes } from './gltf-validation.js';
import { basisuPath, EncoderUnavailableError } from './tools/basisu.js';
import { MAX_SMALL_TEXTURE_ERROR } from './texture-fidelity.js';
import { runStagesDirectly } from '../test/helpers/direct-pipeline.js';
import { SHARED_ASSETS } from '../test/helpers/pipeline-fixture.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-ktx2-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Slots that hold colour (sRGB): ETC1S. Every other slot holds data: UASTC. */
const COLOUR_SLOTS = new Set(['baseColorTexture', 'emissiveTexture']);

describe('textureFormat ktx2 writes KHR_texture_basisu textures', () => {
  it('DamagedHelmet: ETC1S colour, UASTC normal and data maps, full mip chains, valid under glTF-Validator', async () => {
    const settings = resolveSettings({ preset: 'game-ready', textureFormat: 'ktx2', maxTextureSize: 256, lodRatios: [0.5] });
    const run = await runStagesDirectly(path.join(work, 'helmet'), [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], settings);

    expect(run.textures).toHaveLength(5);
    for (const texture of run.textures) {
      expect(texture.after, texture.name).toMatchObject({ mimeType: 'image/ktx2', width: 256, height: 256 });
      expect(texture.lods, texture.name).toEqual([
        { level: 1, width: 180, height: 180, mimeType: 'image/ktx2', bytes: expect.any(Number) },
      ]);
      expect(texture.lods![0]!.bytes, texture.name).toBeLessThan(texture.after.bytes);
      // The encoder's own measure of the decoded image, not a placeholder.
      expect(texture.fidelity?.encoding, texture.name).toBe('lossy');
      expect(texture.fidelity?.maxChannelError, texture.name).toBeGreaterThan(0);
      expect(texture.fidelity?.psnrDb, texture.name).toBeGreaterThan(20);
    }

    const glbs = run.package.outputs.filter((o) => o.kind === 'glb');
    expect(glbs).toHaveLength(2);
    const codecsSeen = new Set<string>();
    for (const output of glbs) {
      const bytes = await fs.readFile(path.join(run.outputDir, output.name));
      const doc = await (await assetIO()).readBinary(bytes);
      const raw = await validateGltfBytes(bytes, { uri: output.name, processable: KNOWN_EXTENSIONS });
      // glTF-Validator's only complaint is that it has no KTX2 reader (one per image); nothing else.
      expect(raw.errorMessages.map((m) => `${m.code} ${m.pointer}`).sort(), output.name).toEqual(
        [0, 1, 2, 3, 4].map((i) => `IMAGE_UNRECOGNIZED_FORMAT /images/${i}`),
      );
      const images = doc
        .getRoot()
        .listTextures()
        .map((t) => ({ mimeType: t.getMimeType(), image: t.getImage() }));
      const check = checkKtx2Images(raw, images);
      expect(check.errors, output.name).toBe(0);
      expect(
        check.messages.filter((m) => m.code === 'KTX2_CHECKED'),
        output.name,
      ).toHaveLength(5);
      const required = doc
        .getRoot()
        .listExtensionsUsed()
        .filter((e) => e.isRequired())
        .map((e) => e.extensionName);
      expect(required, output.name).toContain('KHR_texture_basisu');
      const textures = doc.getRoot().listTextures();
      expect(textures, output.name).toHaveLength(5);
      for (const texture of textures) {
        const slots = listTextureSlots(texture);
        const colour = slots.some((s) => COLOUR_SLOTS.has(s));
        const label = `${output.name} ${slots.join('+')}`;
        expect(texture.getMimeType(), label).toBe('image/ktx2');
        const ktx = readKtx2(texture.getImage()!);
        // LOD1 (ratio 0.5) carries its own copy at √0.5 of the sides, a multiple of 4: 180².
        const side = output.level === 1 ? 180 : 256;
        expect([ktx.pixelWidth, ktx.pixelHeight], label).toEqual([side, side]);
        // A full mip chain: 256 → 1 is nine levels, 180 → 1 eight.
        expect(ktx.levels.length, label).toBe(Math.floor(Math.log2(side)) + 1);
        const dfd = ktx.dataFormatDescriptor[0]!;
        if (colour) {
          expect(ktx.supercompressionScheme, label).toBe(KHR_SUPERCOMPRESSION_BASISLZ);
          expect(dfd.colorModel, label).toBe(KHR_DF_MODEL_ETC1S);
          expect(dfd.transferFunction, label).toBe(KHR_DF_TRANSFER_SRGB);
          codecsSeen.add('etc1s');
        } else {
          expect([KHR_SUPERCOMPRESSION_NONE, KHR_SUPERCOMPRESSION_ZSTD], label).toContain(ktx.supercompressionScheme);
          expect(dfd.colorModel, label).toBe(KHR_DF_MODEL_UASTC);
          expect(dfd.transferFunction, label).toBe(KHR_DF_TRANSFER_LINEAR);
          codecsSeen.add('uastc');
        }
      }
    }
    expect([...codecsSeen].sort()).toEqual(['etc1s', 'uastc']);
    // The report says which codec each texture got, matching its slot.
    const report = JSON.parse(await fs.readFile(path.join(run.outputDir, 'report.json'), 'utf8')) as {
      textures: { name: string; codec?: string }[];
    };
    expect(report.textures.map((t) => t.codec).sort()).toEqual(run.textures.map((t) => t.codec).sort());
    expect(new Set(report.textures.map((t) => t.codec))).toEqual(new Set(['etc1s', 'uastc']));
  });

  it('chr_knight’s 256×1 palette: ETC1S would shift its colours, so it is UASTC, within the small-texture bound, and says so', async () => {
    const settings = resolveSettings({ preset: 'game-ready', textureFormat: 'ktx2', lodRatios: [] });
    const run = await runStagesDirectly(path.join(work, 'knight'), [path.join(SHARED_ASSETS, 'chr_knight.glb')], settings);
    const [palette] = run.textures;
    // Basis blocks are 4 × 4: the one-row palette is stretched to four rows (UVs are relative, the colours stay).
    expect(palette).toMatchObject({ codec: 'uastc', after: { mimeType: 'image/ktx2', width: 256, height: 4 } });
    expect(palette!.fidelity!.maxChannelError).toBeLessThanOrEqual(MAX_SMALL_TEXTURE_ERROR);
    expect(palette!.warnings).toEqual([expect.stringMatching(/ETC1S would have changed .* written as UASTC/)]);
    const [lod0] = run.package.outputs;
    const doc = await (await assetIO()).read(path.join(run.outputDir, lod0!.name));
    expect(basisuImageProblem(doc.getRoot().listTextures()[0]!.getImage()!)).toBeNull();
    // Not Basis Universal, or not KTX2 at all: the check says what is wrong.
    expect(basisuImageProblem(new Uint8Array(64))).toMatch(/not a readable KTX2 container/);
  });

  it('a cancel during a KTX2 encode kills basisu, which the stage thread started, within 2 s', async () => {
    const workDir = path.join(work, 'cancel');
    const inputDir = path.join(workDir, 'input');
    await fs.mkdir(inputDir, { recursive: true });
    await fs.copyFile(path.join(SHARED_ASSETS, 'DamagedHelmet.glb'), path.join(inputDir, 'DamagedHelmet.glb'));
    const settings = resolveSettings({ preset: 'game-ready', textureFormat: 'ktx2', maxTextureSize: 2048 });
    const job = (stage: StageJob['stage']): StageJob => ({
      stage,
      jobId: 'asset-ktx2-cancel',
      assetName: 'DamagedHelmet.glb',
      mainFile: 'DamagedHelmet.glb',
      fileNames: ['DamagedHelmet.glb'],
      inputDir,
      workDir,
      outputDir: '',
      settings,
    });
    const quiet = { start: () => {}, update: () => {} };
    await inspectStage(job('inspect'), quiet);
    await validateStage(job('validate'), quiet);
    await optimizeStage(job('optimize'), quiet);
    /** basisu processes encoding this job's textures (their arguments name its work folder). */
    const encoders = () =>
      readdirSync('/proc')
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
            return /basisu$/.test(args[0] ?? '') && args.some((a) => a.startsWith(workDir));
          } catch {
            return false; // Exited while listed.
          }
        });
    const abort = new AbortController();
    const running = runStageThread(job('textures'), { onStart: () => undefined, onProgress: () => undefined }, abort.signal);
    running.catch(() => undefined);
    await waitFor(() => encoders().length > 0, { timeoutMs: 60_000, what: 'basisu to start encoding' });
    abort.abort(new Error('cancelled by the test'));
    await expect(running).rejects.toThrow('cancelled by the test');
    await waitFor(() => encoders().length === 0, { timeoutMs: 2_000, what: 'basisu to be gone after the cancel' });
    expect(encoders()).toEqual([]);
  }, 120_000);

  it('a machine without a basisu build says so, as a failure that names the way out, not another format', () => {
    expect(basisuPath()).toMatch(/basisu$/);
    for (const [platform, arch] of [
      ['aix', 'ppc64'],
      ['linux', 'riscv64'],
      ['freebsd', 'x64'],
    ] as const) {
      let thrown: unknown;
      try {
        basisuPath(platform, arch);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, `${platform}-${arch}`).toBeInstanceOf(EncoderUnavailableError);
      const error = thrown as EncoderUnavailableError;
      expect(error.message).toContain(`${platform}-${arch}`);
      expect(error.message).toMatch(/Choose WebP or Keep/);
      expect(failureOf(error.code).retryable).toBe(false);
    }
  });
});
