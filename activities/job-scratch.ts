import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { assertJobId, type AssetFile, type AssetStorage, type StoredOutput } from '../storage/asset-storage.js';
import { workFiles } from './work-files.js';

const PRIVATE_DIR = 0o700;

/** True when a process of this pid runs on this machine. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a stage's files are to the next attempt: its size and time of last change. */
type Signature = string;
async function signatureOf(file: string): Promise<Signature | null> {
  const stat = await fs.stat(file).catch(() => null);
  return stat?.isFile() ? `${stat.size}:${stat.mtimeMs}` : null;
}

/** Files of a folder by relative path with `/`, leaving out half-written ones and the fetched inputs. */
async function workFilesIn(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .filter((name) => !name.startsWith('input/'));
}

/**
 * One attempt of one stage on this machine: a fresh folder holding the job's checkpoints (what the
 * earlier stages and attempts stored, wherever they ran), the upload's files when the stage reads them,
 * and an outputs folder the package stage publishes from.
 */
export class StageScratch {
  readonly workDir: string;
  readonly inputDir: string;
  readonly outputDir: string;
  /** Signature of each work file as last stored, so persist() sends only what changed. */
  private readonly stored = new Map<string, Signature>();

  constructor(
    private readonly storage: AssetStorage,
    readonly jobId: string,
    readonly dir: string,
    /** Told of a folder dispose() could not remove, so that it is tried again. */
    private readonly onLeftover: (dir: string) => void = () => {},
  ) {
    this.workDir = path.join(dir, 'work');
    this.inputDir = workFiles.inputDir(this.workDir);
    this.outputDir = path.join(dir, 'outputs');
  }

  /** Fills the folder: the job's checkpoints, then the upload's files when given. */
  async prepare(inputs: readonly AssetFile[] | null): Promise<void> {
    await fs.mkdir(this.workDir, { recursive: true, mode: PRIVATE_DIR });
    await fs.mkdir(this.outputDir, { recursive: true, mode: PRIVATE_DIR });
    for (const name of await this.storage.loadCheckpoints(this.jobId, this.workDir)) {
      const signature = await signatureOf(path.join(this.workDir, ...name.split('/')));
      if (signature) this.stored.set(name, signature);
    }
    if (!inputs) return;
    await fs.mkdir(this.inputDir, { recursive: true, mode: PRIVATE_DIR });
    for (const file of inputs) {
      const name = path.basename(file.name);
      if (name !== file.name || name === '.' || name === '..') throw new Error(`Unsafe file name: ${file.name}`);
      const blob = await this.storage.openUpload(file);
      if (!blob)
        throw new Error(
          `The uploaded file ${file.name} (sha256 ${file.sha256}) is no longer stored; the job's inputs expired. Upload the asset again.`,
        );
      await pipeline(blob.stream, createWriteStream(path.join(this.inputDir, name), { flags: 'wx', mode: 0o600 }));
    }
  }

  /** Stores every work file that is new or changed since the last call as a checkpoint of the job. */
  async persist(): Promise<void> {
    for (const name of await workFilesIn(this.workDir)) {
      const file = path.join(this.workDir, ...name.split('/'));
      const signature = await signatureOf(file);
      if (!signature || this.stored.get(name) === signature) continue;
      await this.storage.saveCheckpoint(this.jobId, name, file);
      this.stored.set(name, signature);
    }
  }

  /**
   * Removes from storage the checkpoints whose files are gone from the work folder (a cancelled stage's
   * discard removed them), so a cancel leaves none of the stage's partial work stored either.
   */
  async forgetDiscarded(): Promise<void> {
    const present = new Set(await workFilesIn(this.workDir).catch(() => []));
    const gone = [...this.stored.keys()].filter((name) => !present.has(name));
    if (gone.length === 0) return;
    await this.storage.removeCheckpointFiles(this.jobId, gone);
    for (const name of gone) this.stored.delete(name);
  }

  /**
   * Writes the job's published outputs into the outputs folder, for a stage that reads them or adds to
   * them after packaging (publish() replaces the whole set). Returns the names written.
   */
  async loadPublishedOutputs(): Promise<string[]> {
    const names: string[] = [];
    for (const output of await this.storage.listOutputs(this.jobId)) {
      const stored = await this.storage.openOutput(this.jobId, output.name);
      if (!stored) continue;
      const file = path.join(this.outputDir, ...output.name.split('/'));
      if (!file.startsWith(this.outputDir + path.sep)) throw new Error(`Unsafe output name: ${output.name}`);
      await fs.mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR });
      await pipeline(stored.stream, createWriteStream(file, { mode: 0o600 }));
      names.push(output.name);
    }
    return names;
  }

  /** Publishes the outputs folder as the job's outputs. */
  publish(): Promise<StoredOutput[]> {
    return this.storage.publishOutputs(this.jobId, this.outputDir);
  }

  async dispose(): Promise<void> {
    try {
      await fs.rm(this.dir, { recursive: true, force: true });
    } catch (err) {
      // A disk refusing writes (or a file someone made immutable): the next stage here tries again.
      this.onLeftover(this.dir);
      throw err;
    }
    // The job's folder goes too once no other stage of it works here.
    await fs.rmdir(path.dirname(this.dir)).catch(() => {});
  }
}

/**
 * This worker process's scratch space: SCRATCH_DIR/<pid>/<jobId>/<stage>-<uuid>. The API never reads it
 * and no other machine needs it: everything a later stage or a retry elsewhere needs is in storage.
 */
export class WorkerScratch {
  /** Attempt folders a dispose() could not remove: removed before the next stage starts here. */
  private readonly leftovers = new Set<string>();

  private constructor(
    private readonly storage: AssetStorage,
    readonly dir: string,
  ) {}

  /** Tries again to remove what earlier attempts left; what still resists stays listed. */
  private async removeLeftovers(): Promise<void> {
    for (const dir of [...this.leftovers]) {
      const removed = await fs.rm(dir, { recursive: true, force: true }).then(
        () => true,
        () => false,
      );
      if (!removed) continue;
      this.leftovers.delete(dir);
      await fs.rmdir(path.dirname(dir)).catch(() => {});
    }
  }

  /**
   * Takes this process's folder under root, first removing the folders of processes that no longer run
   * (a worker killed mid-stage leaves its scratch behind) and any earlier one under this pid.
   */
  static async open(root: string, storage: AssetStorage): Promise<WorkerScratch> {
    await fs.mkdir(root, { recursive: true, mode: PRIVATE_DIR });
    for (const name of await fs.readdir(root)) {
      const pid = /^\d+$/.test(name) ? Number(name) : null;
      if (pid !== null && pid !== process.pid && isAlive(pid)) continue;
      await fs.rm(path.join(root, name), { recursive: true, force: true });
    }
    const dir = path.join(root, String(process.pid));
    await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    return new WorkerScratch(storage, dir);
  }

  /** A fresh folder for one attempt of a stage, prepared from storage; dispose() it when the attempt ends. */
  async openStage(jobId: string, stage: string, inputs: readonly AssetFile[] | null): Promise<StageScratch> {
    assertJobId(jobId);
    await this.removeLeftovers();
    const scratch = new StageScratch(this.storage, jobId, path.join(this.dir, jobId, `${stage}-${randomUUID()}`), (dir) =>
      this.leftovers.add(dir),
    );
    try {
      await scratch.prepare(inputs);
    } catch (err) {
      await scratch.dispose();
      throw err;
    }
    return scratch;
  }
}
