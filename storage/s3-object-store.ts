import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  paginateListObjectsV2,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { StoredObject } from './asset-storage.js';
import type { ObjectStore } from './object-store.js';

/** True for the answer to a GET of a key that does not exist. */
export function isNotFound(err: unknown): boolean {
  return (
    err instanceof NoSuchKey || (err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound'))
  );
}

/** The most keys one DeleteObjects request may name. */
const DELETE_BATCH = 1000;

/** An ObjectStore in one bucket of an S3-compatible server, under an optional key prefix. */
export class S3ObjectStore implements ObjectStore {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    private readonly prefix = '',
  ) {}

  /** The object key of a store key. */
  keyOf(key: string): string {
    return this.prefix + key;
  }

  /**
   * Streams body into key. lib-storage's Upload sends one PUT for a small body and a multipart upload
   * (5 MiB parts, a few at a time) for a large one, so memory stays flat whatever the size.
   */
  async putStream(key: string, body: Readable): Promise<void> {
    await new Upload({ client: this.client, params: { Bucket: this.bucket, Key: this.keyOf(key), Body: body } }).done();
  }

  putFile(key: string, file: string): Promise<void> {
    return this.putStream(key, createReadStream(file));
  }

  async putBytes(key: string, bytes: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), Body: bytes }));
  }

  async open(key: string): Promise<StoredObject | null> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return { stream: answer.Body as Readable, size: answer.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async sizeOf(key: string): Promise<number | null> {
    try {
      const answer = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return answer.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async readBytes(key: string): Promise<Buffer | null> {
    const object = await this.open(key);
    if (!object) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: this.keyOf(prefix) }))
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(this.prefix.length));
    return keys;
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const answer = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((key) => ({ Key: this.keyOf(key) })), Quiet: true },
        }),
      );
      const failed = (answer.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0)
        throw new Error(
          `Could not delete ${failed.length} object(s) from bucket ${this.bucket}, e.g. ${failed[0]!.Key}: ${failed[0]!.Message}`,
        );
    }
  }
}
