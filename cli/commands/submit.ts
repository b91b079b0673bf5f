import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { groupAssets } from '../../common/asset-grouping.js';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { JOB_PRIORITIES } from '../../common/job-priority.js';
import { JobOptions, PRESETS } from '../../common/jobs.js';
import { MODEL_FILE } from '../../common/model-files.js';
import { TextureFormat } from '../../common/pipeline.js';
import { CliError } from '../cli-error.js';
import { printJson, signedInClient } from '../session.js';
import { followJob } from './watch.js';

interface SubmitOptions {
  preset?: string;
  lodRatios?: number[];
  maxTextureSize?: number;
  textureFormat?: string;
  priority?: string;
  watch?: boolean;
  json?: boolean;
}

function parseLodRatios(value: string): number[] {
  const ratios = value.split(',').map((part) => Number(part.trim()));
  if (ratios.some((r) => !Number.isFinite(r) || r <= 0 || r >= 1)) {
    throw new InvalidArgumentError('give ratios between 0 and 1, comma-separated, e.g. 0.5,0.25');
  }
  return ratios;
}

function parseTextureSize(value: string): number {
  const size = Number(value);
  if (!Number.isInteger(size) || size < 16 || size > 16384)
    throw new InvalidArgumentError('give a whole number of pixels from 16 to 16384');
  return size;
}

/** A folder's files (walked), grouped into assets the way the page groups a dropped folder. */
async function folderAssets(folder: string): Promise<string[][]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  const picked = entries
    .filter((e) => e.isFile())
    .map((e) => {
      const full = path.join(e.parentPath, e.name);
      return { file: { name: e.name, size: 0, full }, dir: path.relative(folder, e.parentPath).split(path.sep).filter(Boolean).join('/') };
    });
  const { assets } = await groupAssets(picked, (f) => readFile(f.full, 'utf8'), Number.MAX_SAFE_INTEGER);
  const broken = assets.filter((a) => a.problems.length > 0);
  if (broken.length > 0) throw new CliError('BAD_ARGUMENT', broken.map((a) => `${a.name}: ${a.problems.join('; ')}`).join('\n'));
  if (assets.length === 0) throw new CliError('BAD_ARGUMENT', `${folder} holds no .glb or .gltf file.`);
  return assets.map((a) => a.files.map((f) => f.file.full));
}

async function checkFiles(files: string[]): Promise<void> {
  for (const file of files) {
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) throw new CliError('BAD_ARGUMENT', `${file} is not a readable file.`);
  }
  if (!files.some((f) => MODEL_FILE.test(f))) {
    throw new CliError(
      'BAD_ARGUMENT',
      'Give one model: a .glb, .fbx or .blend, or a .gltf or .obj together with the files it refers to (.bin, .mtl, textures).',
    );
  }
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description(
      'upload one asset (a .glb, .fbx or .blend, or a .gltf or .obj with its .bin, .mtl and images) and start a job, or a folder as one batch (a job per asset in it); prints the job id',
    )
    .argument('<files...>', 'the asset’s files, or one folder')
    .addOption(new Option('--preset <name>', 'processing preset').choices(PRESETS))
    .option('--lod-ratios <list>', 'LOD ratios after LOD0, e.g. 0.5,0.25', parseLodRatios)
    .option('--max-texture-size <px>', 'longest texture side', parseTextureSize)
    .addOption(new Option('--texture-format <format>', 'texture output format').choices(TextureFormat.options))
    .addOption(
      new Option('--priority <level>', 'place among the jobs waiting for the HPC machines (urgent needs permission)').choices(
        JOB_PRIORITIES,
      ),
    )
    .option('--watch', 'follow the job to its end; exit 0 if it completes, 1 if not')
    .option('--json', 'print the API answer as JSON (with --watch, then NDJSON messages)')
    .action(async (files: string[], options: SubmitOptions) => {
      const folder = files.length === 1 ? await stat(files[0]!).catch(() => null) : null;
      if (!folder?.isDirectory()) await checkFiles(files);
      const chosen = {
        ...(options.preset ? { preset: options.preset } : {}),
        ...(options.lodRatios ? { lodRatios: options.lodRatios } : {}),
        ...(options.maxTextureSize ? { maxTextureSize: options.maxTextureSize } : {}),
        ...(options.textureFormat ? { textureFormat: options.textureFormat } : {}),
        ...(options.priority ? { priority: options.priority } : {}),
      };
      // Checked with the API's own schema so a bad combination is a usage error here, not a 400 later.
      const parsed = JobOptions.partial().safeParse(chosen);
      if (!parsed.success)
        throw new CliError('BAD_ARGUMENT', `Options are not valid: ${parsed.error.issues.map((i) => i.message).join('; ')}.`);
      const client = await signedInClient();
      if (folder?.isDirectory()) {
        // A folder is one batch: an asset job per model in it, followed as one thing.
        const batch = await client.submitBatch(path.basename(path.resolve(files[0]!)), await folderAssets(files[0]!), parsed.data);
        if (options.json) printJson(batch);
        else
          process.stdout.write(
            options.watch ? `${batch.jobId} submitted (batch ${batch.name} of ${batch.assets.length} assets)\n` : `${batch.jobId}\n`,
          );
        if (options.watch) process.exitCode = await followJob(client, batch.jobId, { json: Boolean(options.json), fromStart: true });
        return;
      }
      const answer = await client.submit(files, parsed.data);
      if (options.json) printJson(answer);
      else process.stdout.write(options.watch ? `${answer.jobId} submitted (${answer.assetName})\n` : `${answer.jobId}\n`);
      if (options.watch) process.exitCode = await followJob(client, answer.jobId, { json: Boolean(options.json), fromStart: true });
    });
}
