import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { loadConfig, storageSchema } from '../common/config.js';
import { startTestS3 } from '../test/helpers/s3.js';
import { createStorage, s3ClientOf } from './create-storage.js';
import { S3Storage } from './s3-storage.js';
import { describeStorageContract } from './storage-contract.js';
import { Readable } from 'node:stream';

// The same contract as LocalStorage, against a real S3-compatible server (versitygw) started for the run.
describeStorageContract('S3Storage on versitygw', async () => {
  const server = await startTestS3();
  const config = loadConfig(storageSchema, { ...server.env, S3_PREFIX: 'contract/' });
  const client = s3ClientOf(config);
  return {
    storage: createStorage(config),
    async countObjects() {
      const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket }));
      return page.KeyCount ?? 0;
    },
    async stop() {
      client.destroy();
      await server.stop();
    },
  };
});

describe('S3Storage', () => {
  let server: Awaited<ReturnType<typeof startTestS3>>;
  beforeAll(async () => {
    server = await startTestS3();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('keeps to its key prefix, so stacks can share a bucket', async () => {
    const config = loadConfig(storageSchema, { ...server.env, S3_PREFIX: 'stack-a/' });
    const storage = createStorage(config);
    expect(storage).toBeInstanceOf(S3Storage);
    await storage.putUpload(Readable.from([Buffer.from('prefixed')]), 1024);
    const client = s3ClientOf(config);
    const page = await client.send(new ListObjectsV2Command({ Bucket: server.bucket }));
    client.destroy();
    expect(page.Contents?.map((o) => o.Key)).toEqual([expect.stringMatching(/^stack-a\/uploads\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/)]);
  });

  it('sweeps partial uploads a killed process left (a temporary object, an unfinished multipart upload), and only stale ones', async () => {
    const config = loadConfig(storageSchema, { ...server.env, S3_PREFIX: 'sweep/' });
    const storage = createStorage(config);
    const client = s3ClientOf(config);
    const Bucket = server.bucket;
    await client.send(new PutObjectCommand({ Bucket, Key: 'sweep/uploads/tmp/left-by-a-killed-api', Body: 'half an upload' }));
    const multipart = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'sweep/uploads/tmp/left-mid-multipart' }));
    await client.send(
      new UploadPartCommand({
        Bucket,
        Key: 'sweep/uploads/tmp/left-mid-multipart',
        UploadId: multipart.UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024),
      }),
    );
    // Written to just now: an upload in progress as far as an hour's cutoff knows.
    expect(await storage.removeStaleUploads(60 * 60 * 1000)).toBe(0);
    expect(await storage.removeStaleUploads(0)).toBe(2);
    const left = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'sweep/uploads/tmp/' }));
    expect(left.KeyCount ?? 0).toBe(0);
    const unfinished = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'sweep/' }));
    expect(unfinished.Uploads ?? []).toEqual([]);
    client.destroy();
  });

  it('says which credential is wrong when the server refuses the keys', async () => {
    const storage = createStorage(loadConfig(storageSchema, { ...server.env, S3_SECRET_ACCESS_KEY: 'not-the-secret' }));
    await expect(storage.listOutputs('asset-a-1')).rejects.toThrow(/signature|access|denied/i);
  });
});
