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

/**
 * Where uploads and job outputs live. The local-filesystem implementation serves a single HPC
 * machine sharing a disk with the API; an S3-compatible store can implement the same interface.
 */
export interface AssetStorage {
  /** Streams an upload into the store. Rejects, leaving nothing behind, when the stream errors or exceeds maxBytes. */
  putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob>;
  /** Lays out a job's input files under their own names in a fresh folder and returns its path. */
  materializeInputs(jobId: string, files: readonly AssetFile[]): Promise<string>;
  /** Folder, created on demand, where a job's stages keep intermediate files for the next stage. */
  workDir(jobId: string): Promise<string>;
  /** Folder where a job writes its outputs, created on demand (for the job's own stages). */
  outputDir(jobId: string): Promise<string>;
  /** Where a job's outputs are, without creating anything: for readers (it may not exist). */
  outputLocation(jobId: string): string;
  /** Path of a stored upload blob, or null when it is no longer stored. */
  uploadPath(blob: StoredBlob): Promise<string | null>;
  /** Absolute path of one output, or null when it does not exist or the name escapes the job's folder. */
  outputPath(jobId: string, name: string): Promise<string | null>;
  /** Removes a job's working folder (inputs and intermediates); nothing happens when it is already gone. */
  removeWork(jobId: string): Promise<void>;
  /** Removes a job's outputs; nothing happens when they are already gone. */
  removeOutputs(jobId: string): Promise<void>;
  /**
   * Ends the request's hold on a blob putUpload returned. `discarded`: the request failed (another file
   * was too large, the options were bad), so a blob it created is removed once no other request in flight
   * holds it; a blob that existed before, or that a job may need, is kept. `kept`: a job uses it.
   */
  settleUpload(blob: StoredBlob, outcome: 'kept' | 'discarded'): Promise<void>;
  /**
   * Removes partial upload files that no request has written to for maxAgeMs (left by a process killed
   * mid-upload). Returns how many were removed.
   */
  removeStaleUploads(maxAgeMs: number): Promise<number>;
}

/** Thrown when an upload goes over the configured size limit. */
export class UploadTooLargeError extends Error {
  readonly code = FAILURES.UPLOAD_TOO_LARGE.code;
  constructor(readonly limit: number) {
    super(`Upload is larger than the ${limit}-byte limit; reduce the asset or ask an engineer to raise UPLOAD_MAX_BYTES.`);
    this.name = 'UploadTooLargeError';
  }
}
