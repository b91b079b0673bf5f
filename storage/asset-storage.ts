import type { Readable } from 'node:stream';
import { FAILURES } from '../common/failures.js';

/** A stored upload: content-addressed, so the same bytes uploaded twice are kept once. */
export interface StoredBlob {
  sha256: string;
  size: number;
}

/** One file of an asset as the artist named it, pointing at its stored bytes. */
export interface AssetFile extends StoredBlob {
  name: string;
}

/** One published output of a job, by its path relative to the job's outputs (always with `/`). */
export interface StoredOutput {
  name: string;
  size: number;
  sha256: string;
  /** ISO time it was published. */
  modifiedAt: string;
}

/** Stored bytes opened for reading: a stream the caller must consume or destroy, and its length. */
export interface StoredObject {
  stream: Readable;
  size: number;
}

/**
 * Where uploads, stage checkpoints and job outputs live, by what a process does with them and never by
 * path: the API and the HPC workers may run on machines that share no disk. Two implementations:
 * LocalStorage (one folder, the embedded default) and S3Storage (any S3-compatible object store).
 * Every implementation passes storage/storage-contract.ts.
 */
export interface AssetStorage {
  /** Streams an upload into the store. Rejects, leaving nothing behind, when the stream errors or exceeds maxBytes. */
  putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob>;
  /**
   * Ends the request's hold on a blob putUpload returned. `discarded`: the request failed (another file
   * was too large, the options were bad), so a blob it created is removed once no other request in flight
   * holds it; a blob that existed before, or that a job may need, is kept. `kept`: a job uses it.
   */
  settleUpload(blob: StoredBlob, outcome: 'kept' | 'discarded'): Promise<void>;
  /**
   * Removes partial uploads that no request has written to for maxAgeMs (left by a process killed
   * mid-upload). Returns how many were removed.
   */
  removeStaleUploads(maxAgeMs: number): Promise<number>;
  /** Opens a stored upload blob, or null when it is no longer stored. */
  openUpload(blob: StoredBlob): Promise<StoredObject | null>;
  /** True when the blob is stored with its size; reads none of its bytes. */
  hasUpload(blob: StoredBlob): Promise<boolean>;
  /**
   * Records that a job needs these blobs: they stay stored until deleteJob(jobId) (and until every other
   * job that retained them is deleted too). Call before the job starts.
   */
  retainInputs(jobId: string, blobs: readonly StoredBlob[]): Promise<void>;
  /**
   * Publishes every regular file under a local folder as the job's outputs, replacing earlier ones. The
   * listing changes only once every file is stored, so readers never see half a publication.
   */
  publishOutputs(jobId: string, dir: string): Promise<StoredOutput[]>;
  /** The job's published outputs, sorted by name; none when nothing was published (or it expired). */
  listOutputs(jobId: string): Promise<StoredOutput[]>;
  /** Opens one published output, or null when the job has no output of that name. */
  openOutput(jobId: string, name: string): Promise<StoredObject | null>;
  /** Removes a job's outputs; nothing happens when they are already gone. */
  removeOutputs(jobId: string): Promise<void>;
  /**
   * Stores a local file as one of a job's stage checkpoints under `name` (a relative path with `/`),
   * replacing an earlier one: what a retry on another machine needs to resume.
   */
  saveCheckpoint(jobId: string, name: string, file: string): Promise<void>;
  /** Writes every checkpoint of the job into a local folder under its name; returns the names written. */
  loadCheckpoints(jobId: string, dir: string): Promise<string[]>;
  /** Removes some of a job's checkpoints by name (a cancelled stage's); names already gone are not an error. */
  removeCheckpointFiles(jobId: string, names: readonly string[]): Promise<void>;
  /** Removes a job's checkpoints; nothing happens when they are already gone. */
  removeCheckpoints(jobId: string): Promise<void>;
  /**
   * Removes everything of a job (outputs, checkpoints, its hold on its inputs) and every upload blob no
   * other job retains. Idempotent.
   */
  deleteJob(jobId: string): Promise<void>;
}

/** Thrown when an upload goes over the configured size limit. */
export class UploadTooLargeError extends Error {
  readonly code = FAILURES.UPLOAD_TOO_LARGE.code;
  constructor(readonly limit: number) {
    super(`Upload is larger than the ${limit}-byte limit; reduce the asset or ask an engineer to raise UPLOAD_MAX_BYTES.`);
    this.name = 'UploadTooLargeError';
  }
}

const JOB_ID = /^[A-Za-z0-9._@-]+$/;

/** Refuses a job id that could name anything but the job's own keys. */
export function assertJobId(jobId: string): void {
  if (!JOB_ID.test(jobId) || jobId === '.' || jobId === '..') throw new Error(`Not a job id: ${jobId}`);
}

/**
 * Refuses a relative name (output or checkpoint) that could leave its job's keys: empty, absolute,
 * backslashes, NUL, `.` or `..` components.
 */
export function isSafeRelativeName(name: string): boolean {
  if (!name || name.includes('\0') || name.includes('\\') || name.startsWith('/')) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
