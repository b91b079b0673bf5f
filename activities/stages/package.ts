import fs from 'node:fs/promises';
import path from 'node:path';
import type { Document } from '@gltf-transform/core';
import { EXTMeshoptCompression, EXTTextureWebP, KHRDracoMeshCompression, KHRTextureBasisu } from '@gltf-transform/extensions';
import { type OutputFile, PackageResult, type PipelineSettings } from '../../common/pipeline.js';
import type { AssetStats } from '../../common/jobs.js';
import { MODEL_FILE } from '../../common/model-files.js';
import { readAssetStats } from '../asset-stats.js';
import { assetIO, KNOWN_EXTENSIONS, readJsonIfExists, readUpload, readWorkFile, writeFileAtomic } from '../asset-io.js';
import { checkKtx2Images, describeValidatorMessage, validateGltfBytes } from '../gltf-validation.js';
import { OutputInvalidError } from '../output-error.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { CarriedFeatures, type DroppedFeature, droppedFeatures, readCarriedFeatures } from '../asset-features.js';
import { AssetStatsSchema, LodResultSchema, OptimizeResultSchema, ValidationSummarySchema, workFiles } from '../work-files.js';
import { type ProcessedTexture, readProcessedTextures } from './textures.js';
import type { ProgressReporter } from '../progress-reporter.js';
import { compareWithGltfpack } from './gltfpack-compare.js';
import { digestOf, optimizedOriginals, readOptimizedGeometry, referencedDigest, sha256Hex } from '../image-refs.js';

/** Longest output base name in UTF-8 bytes: with "-lod0.glb" and the 41-byte temporary suffix, under 255. */
const MAX_BASE_NAME_BYTES = 150;

/**
 * Output files are named after the asset, in the artist's own script (модель-lod0.glb), reduced to letters,
 * digits and . _ - (safe in every file system and, percent-encoded, in URLs) and cut to a length every
 * file system takes (a 300-character name would otherwise fail ENAMETOOLONG on every attempt).
 */
export function outputBaseName(assetName: string): string {
  let base = assetName
    .normalize('NFC')
    .replace(MODEL_FILE, '')
    .replace(/[^\p{L}\p{M}\p{N}._-]+/gu, '_')
    .replace(/^[._]+/, '');
  while (Buffer.byteLength(base, 'utf8') > MAX_BASE_NAME_BYTES) base = [...base].slice(0, -1).join('');
  return base || 'asset';
}

/**
 * Writes the deliverables: one GLB per LOD (LOD0 = the optimised full mesh) with the processed textures and
 * the settings' geometry compression, each checked by glTF-Validator, plus report.json with before/after stats.
 */
export async function packageStage(job: StageJob, progress: StageProgress): Promise<PackageResult> {
  const levels = [0, ...job.settings.lodRatios.map((_, i) => i + 1)];
  progress.start(levels.length + 1, 'files', `Packaging ${levels.length} GLB(s)`);
  const textures = await readProcessedTextures(job.workDir);
  const base = outputBaseName(job.assetName);
  const outputs: OutputFile[] = [];
  let validationErrors = 0;
  const steps = new Set<string>();
  const delivered: AssetStats[] = [];
  const inputFeatures = await readJsonIfExists(workFiles.inputFeatures(job.workDir), CarriedFeatures);
  const inputStats = await readJsonIfExists(workFiles.inspect(job.workDir), AssetStatsSchema);
  // Every level refers to the optimised model's images (activities/image-refs.ts); those no processed image replaces are read from it.
  const original = optimizedOriginals(job.workDir);
  const dropped: DroppedFeature[] = [];
  const notes: string[] = [];
  for (const [i, level] of levels.entries()) {
    const doc =
      level === 0 ? await readOptimizedGeometry(job.workDir) : await readWorkFile(workFiles.lodGlb(job.workDir, level), 'buildLods');
    const name = `${base}-lod${level}.glb`;
    for (const step of await swapTextures(doc, textures, level, original, name)) steps.add(step);
    const encoded = await encodeLevel(doc, job.settings, inputStats, level === 0);
    for (const step of encoded.steps) steps.add(step);
    if (encoded.note) notes.push(`${name}: ${encoded.note}`);
    const bytes = encoded.bytes;
    const check = checkKtx2Images(
      await validateGltfBytes(bytes, { uri: name, processable: KNOWN_EXTENSIONS }),
      doc
        .getRoot()
        .listTextures()
        .map((t) => ({ mimeType: t.getMimeType(), image: t.getImage() })),
    );
    if (check.errors > 0) {
      const first = check.errorMessages[0];
      throw new OutputInvalidError(
        `The packaged ${name} failed glTF validation (${check.errors} error${check.errors > 1 ? 's' : ''}${first ? `, the first ${describeValidatorMessage(first)}` : ''}): a pipeline bug, not a problem of the upload; report the job id to the pipeline team.`,
      );
    }
    validationErrors += check.errors;
    await writeFileAtomic(path.join(job.outputDir, name), bytes);
    const stats = readAssetStats(doc, bytes.byteLength);
    delivered[level] = stats;
    if (inputFeatures) dropped.push(...droppedFeatures(`lod${level}`, inputFeatures, readCarriedFeatures(doc), level > 0));
    outputs.push({ name, bytes: bytes.byteLength, sha256: sha256Hex(bytes), kind: 'glb', level });
    progress.update(i + 1, `Wrote ${name} (${(bytes.byteLength / 1e6).toFixed(2)} MB, ${check.warnings} warnings)`);
  }
  const report = await buildReport(job, delivered, [...steps], [...textures.values()], { dropped, notes });
  const reportBytes = Buffer.from(JSON.stringify(report, null, 2));
  await writeFileAtomic(path.join(job.outputDir, 'report.json'), reportBytes);
  outputs.push({ name: 'report.json', bytes: reportBytes.byteLength, sha256: sha256Hex(reportBytes), kind: 'report' });
  progress.update(levels.length + 1, 'Wrote report.json');
  // LOD0 is always written first, so delivered[0] exists.
  return { outputs, validationErrors, stats: delivered[0]!, steps: [...steps], ...(notes.length ? { notes } : {}) };
}

/**
 * Puts the textures stage's images in place of the originals, found by the digest of the original bytes: a
 * simplified LOD gets the texture's smaller copy for its level, when it has one (else it shares LOD0's).
 * An image no record replaces (an uploaded KTX2, a plan without the textures stage) is a reference to the
 * optimised model's (activities/image-refs.ts) and gets that original back. A LOD an older worker wrote
 * carries its images instead of references; those are found by their digest as before.
 */
async function swapTextures(
  doc: Document,
  records: Map<string, ProcessedTexture>,
  level: number,
  original: (digest: string) => Promise<Uint8Array | undefined>,
  name: string,
): Promise<string[]> {
  let webp = false;
  let ktx2 = false;
  let swapped = 0;
  for (const texture of doc.getRoot().listTextures()) {
    const image = texture.getImage();
    if (!image) continue;
    const digest = digestOf(image);
    const record = records.get(digest);
    if (!record) {
      if (referencedDigest(image)) {
        const bytes = await original(digest);
        if (!bytes)
          throw new OutputInvalidError(
            `${name} refers to an image the optimised model does not have (sha256 ${digest}): a pipeline bug, not a problem of the upload; report the job id to the pipeline team.`,
          );
        texture.setImage(bytes);
      }
      continue;
    }
    texture.setImage(record.lodImages.get(level) ?? record.image).setMimeType(record.result.after.mimeType);
    const extension = record.file.slice(record.file.lastIndexOf('.'));
    if (texture.getURI()) texture.setURI(texture.getURI().replace(/\.[^./]*$/, '') + extension);
    webp ||= record.result.after.mimeType === 'image/webp';
    ktx2 ||= record.result.after.mimeType === 'image/ktx2';
    swapped++;
  }
  if (webp) doc.createExtension(EXTTextureWebP).setRequired(true);
  // Viewers without a Basis transcoder cannot show these textures, and there is no fallback image: required.
  if (ktx2) doc.createExtension(KHRTextureBasisu).setRequired(true);
  return swapped ? ['textures'] : [];
}

/**
 * The level's GLB with the settings' geometry compression, or with Draco when the upload came Draco-compressed
 * and Draco is smaller for it (DenseSphere: 48 KB as uploaded, 143 KB with meshopt). Says why when the
 * full-detail level still comes out larger than the upload.
 */
async function encodeLevel(
  doc: Document,
  settings: PipelineSettings,
  input: AssetStats | null,
  fullDetail: boolean,
): Promise<{ bytes: Uint8Array; steps: string[]; note?: string }> {
  const io = await assetIO();
  const steps = applyCompression(doc, settings);
  const bytes = await io.writeBinary(doc);
  let note: string | undefined;
  const uploadUsedDraco = input?.extensionsUsed.includes(KHRDracoMeshCompression.EXTENSION_NAME) ?? false;
  if (uploadUsedDraco && settings.geometryCompression === 'meshopt' && hasGeometry(doc)) {
    const dracoSteps = applyCompression(doc, { ...settings, geometryCompression: 'draco' });
    const draco = await io.writeBinary(doc);
    if (draco.byteLength < bytes.byteLength) {
      note = `kept Draco compression, as the upload had it: ${kb(draco.byteLength)} against ${kb(bytes.byteLength)} with meshopt.`;
      return { bytes: draco, steps: dracoSteps, note };
    }
    applyCompression(doc, settings);
  }
  if (fullDetail && input && bytes.byteLength > input.fileBytes && hasGeometry(doc)) {
    note = `${size(bytes.byteLength)}, larger than the upload's ${size(input.fileBytes)}: ${whyLarger(doc, settings, input)}`;
  }
  return { bytes, steps, ...(note ? { note } : {}) };
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

/** Exact below 100 KB, where two sizes of a small file would otherwise read the same. */
function size(bytes: number): string {
  return bytes < 100 * 1024 ? `${bytes.toLocaleString('en')} bytes` : kb(bytes);
}

/** The likeliest reason an output outgrew its upload, from what differs between them. */
function whyLarger(doc: Document, settings: PipelineSettings, input: AssetStats): string {
  const textureBytes = (stats: { textures: { bytes: number }[] }) => stats.textures.reduce((n, t) => n + t.bytes, 0);
  const out = readAssetStats(doc, 0);
  if (textureBytes(out) > textureBytes(input))
    return 'its textures were re-encoded losslessly to keep their colours, which made them bigger.';
  if (settings.geometryCompression === 'none') return 'the settings ask for uncompressed geometry.';
  if (out.vertices > input.vertices) return 'vertices had to be split where normals or UVs differ, which the upload shared.';
  const compressed = input.extensionsUsed.some((e) => e === 'KHR_draco_mesh_compression' || e === 'EXT_meshopt_compression');
  if (!compressed && input.fileBytes < 64 * 1024)
    return 'in a file this small, the tables and extension records compression needs outweigh what it saves; the upload itself is as good to use.';
  return 'the upload was already compressed more tightly than these settings compress; the archive preset keeps it as it is.';
}

/** True when the document has any geometry to compress: a GLB of only nodes must not get a compression buffer. */
function hasGeometry(doc: Document): boolean {
  return doc
    .getRoot()
    .listAccessors()
    .some((a) => a.getCount() > 0);
}

/** Replaces whatever compression the source used by the one the settings ask for. */
function applyCompression(doc: Document, settings: PipelineSettings): string[] {
  for (const ext of doc.getRoot().listExtensionsUsed()) {
    if (ext.extensionName === KHRDracoMeshCompression.EXTENSION_NAME || ext.extensionName === EXTMeshoptCompression.EXTENSION_NAME)
      ext.dispose();
  }
  // meshopt's fallback buffer would have byteLength 0, which glTF forbids (UNDEFINED_PROPERTY at /buffers/0).
  if (!hasGeometry(doc)) return [];
  if (settings.geometryCompression === 'meshopt') {
    doc
      .createExtension(EXTMeshoptCompression)
      .setRequired(true)
      // Filters assume quantised attributes; without quantisation only the lossless byte codec applies.
      .setEncoderOptions({
        method: settings.quantize ? EXTMeshoptCompression.EncoderMethod.FILTER : EXTMeshoptCompression.EncoderMethod.QUANTIZE,
      });
    return ['meshopt'];
  }
  if (settings.geometryCompression === 'draco') {
    doc
      .createExtension(KHRDracoMeshCompression)
      .setRequired(true)
      .setEncoderOptions({ method: KHRDracoMeshCompression.EncoderMethod.EDGEBREAKER });
    return ['draco'];
  }
  return [];
}

async function buildReport(
  job: StageJob,
  delivered: AssetStats[],
  steps: string[],
  textures: ProcessedTexture[],
  losses: { dropped: DroppedFeature[]; notes: string[] },
) {
  const lods = await Promise.all(
    job.settings.lodRatios.map((_, i) => readJsonIfExists(workFiles.lodResult(job.workDir, i + 1), LodResultSchema)),
  );
  return {
    assetName: job.assetName,
    jobId: job.jobId,
    settings: job.settings,
    before: (await readJsonIfExists(workFiles.inspect(job.workDir), AssetStatsSchema)) ?? (await inspectAgain(job)),
    optimize: await readJsonIfExists(workFiles.optimizeResult(job.workDir), OptimizeResultSchema),
    lods: lods.filter((l) => l !== null),
    textures: textures.sort((a, b) => a.index - b.index).map((t) => t.result),
    packaging: steps,
    after: Object.fromEntries(delivered.map((stats, level) => [`lod${level}`, stats])),
    /** What an output does not carry that the upload did, and why (empty when nothing was lost). */
    dropped: [
      ...((await readJsonIfExists(workFiles.validation(job.workDir), ValidationSummarySchema))?.messages ?? [])
        .filter((m) => m.code === 'EXTENSION_DROPPED')
        .map((m) => ({ output: 'all', feature: m.message.split(' ')[0]!, before: 'used', after: 'absent', reason: m.message })),
      ...losses.dropped,
    ],
    /** Why an output differs from what its settings promise (a LOD kept whole, LOD0 larger than the upload…). */
    notes: [...lods.flatMap((l) => (l?.note ? [l.note] : [])), ...losses.notes],
  };
}

/** The before-stats when inspect's record is gone (e.g. work folder restored): read the upload again. */
async function inspectAgain(job: StageJob): Promise<AssetStats> {
  const sizes = await Promise.all(job.fileNames.map(async (n) => (await fs.stat(path.join(job.inputDir, n))).size));
  return readAssetStats(
    await readUpload(job),
    sizes.reduce((a, b) => a + b, 0),
  );
}

/** Removes partial outputs of an interrupted packaging. */
export async function discardPackage(outputDir: string): Promise<void> {
  await fs.rm(outputDir, { recursive: true, force: true });
}

// The stage module (activities/stage-module.ts).
export const run = packageStage;
export const discard = (job: StageJob) => discardPackage(job.outputDir);
/** The gltfpack comparison runs in the activity, as an external tool a cancel kills (settings.compareWithGltfpack). */
export const afterRun = (job: StageJob, result: unknown, reporter: ProgressReporter<unknown>, signal: AbortSignal) => {
  const packaged = PackageResult.parse(result);
  return job.settings.compareWithGltfpack ? compareWithGltfpack(job, packaged, reporter, signal) : Promise.resolve(packaged);
};
