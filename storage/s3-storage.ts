import { randomUUID } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  paginateListObjectsV2,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { type AssetStorage, type StoredBlob } from './asset-storage.js';
import { blobKey, JobData } from './job-data.js';
import { uploadMeter } from './upload-meter.js';
import { isNotFound, S3ObjectStore } from './s3-object-store.js';

const TMP_PREFIX = 'uploads/tmp/';

/**
 * Storage in a bucket of any S3-compatible server (AWS S3, Ceph RGW, SeaweedFS, Garage, versitygw, MinIO…):
 * the keys of storage/job-data.ts, plus uploads/tmp/ for uploads being received. The API and the HPC
 * workers share only the bucket.
 */
export class S3Storage extends JobData implements AssetStorage {
  private readonly bucket: S3ObjectStore;

  constructor(client: S3Client, bucket: string, prefix = '') {
    const objects = new S3ObjectStore(client, bucket, prefix);
    super(objects);
    this.bucket = objects;
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.bucket.client.send(new HeadObjectCommand({ Bucket: this.bucket.bucket, Key: this.bucket.keyOf(key) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async putUpload(stream: Readable, maxBytes: number): Promise<StoredBlob> {
    const tmp = `${TMP_PREFIX}${randomUUID()}`;
    const { meter, blob } = uploadMeter(maxBytes);
    const body = new PassThrough();
    try {
      // The digest is known only at the end: the bytes go to a temporary key, then are copied to their
      // content address inside the server (no second transfer) unless the same bytes are stored already.
      await Promise.all([pipeline(stream, meter, body), this.bucket.putStream(tmp, body)]);
      const { sha256, size } = blob();
      const key = blobKey(sha256);
      const existed = await this.exists(key);
      if (!existed)
        await this.bucket.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket.bucket,
            Key: this.bucket.keyOf(key),
            CopySource: `${this.bucket.bucket}/${this.bucket.keyOf(tmp)}`,
          }),
        );
      this.holdUpload(sha256, existed);
      return { sha256, size };
    } catch (err) {
      body.destroy();
      throw err;
    } finally {
      await this.objects.remove([tmp]).catch(() => {});
    }
  }

  async settleUpload(blob: StoredBlob, outcome: 'kept' | 'discarded'): Promise<void> {
    if (!this.releaseUpload(blob.sha256, outcome) || (await this.isRetained(blob.sha256))) return;
    await this.objects.remove([blobKey(blob.sha256)]);
  }

  async removeStaleUploads(maxAgeMs: number): Promise<number> {
    const { client, bucket } = this.bucket;
    const cutoff = Date.now() - maxAgeMs;
    const prefix = this.bucket.keyOf(TMP_PREFIX);
    let removed = 0;
    const stale: string[] = [];
    for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix }))
      for (const object of page.Contents ?? []) if (object.Key && (object.LastModified?.getTime() ?? 0) < cutoff) stale.push(object.Key);
    await this.objects.remove(stale.map((key) => key.slice(prefix.length - TMP_PREFIX.length)));
    removed += stale.length;
    // A process killed during a large upload leaves a multipart upload whose parts the server keeps until
    // aborted; one still receiving parts is left alone. One page (1,000) a sweep: the next sweep takes the rest.
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    {
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || (upload.Initiated?.getTime() ?? 0) >= cutoff) continue;
        const parts = await client.send(new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
        const lastWrite = Math.max(upload.Initiated?.getTime() ?? 0, ...(parts.Parts ?? []).map((p) => p.LastModified?.getTime() ?? 0));
        if (lastWrite >= cutoff) continue;
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
        removed++;
      }
    }
    return removed;
  }
}
