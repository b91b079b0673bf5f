import type { StoredObject } from './asset-storage.js';

/**
 * The few key/bytes operations both storage back ends offer, under `/`-separated keys: a folder on the
 * local disk (FsObjectStore) or a bucket (S3ObjectStore). JobData builds the job-level operations of
 * AssetStorage on top of it once, so both implementations lay out the same keys.
 */
export interface ObjectStore {
  /** Stores a local file under key, replacing what was there; readers see the old or the new bytes, never a part. */
  putFile(key: string, file: string): Promise<void>;
  putBytes(key: string, bytes: Buffer): Promise<void>;
  /** Opens key for reading, or null when there is no such object. */
  open(key: string): Promise<StoredObject | null>;
  readBytes(key: string): Promise<Buffer | null>;
  /** Size of the object under key, or null when there is none; reads no bytes. */
  sizeOf(key: string): Promise<number | null>;
  /** Every key under prefix (which ends with `/`), in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Removes keys; keys already gone are not an error. */
  remove(keys: readonly string[]): Promise<void>;
}

/** Removes every key under prefix. */
export async function removePrefix(objects: ObjectStore, prefix: string): Promise<void> {
  await objects.remove(await objects.list(prefix));
}
