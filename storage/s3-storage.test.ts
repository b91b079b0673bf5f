import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
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

  it('says which credential is wrong when the server refuses the keys', async () => {
    const storage = createStorage(loadConfig(storageSchema, { ...server.env, S3_SECRET_ACCESS_KEY: 'not-the-secret' }));
    await expect(storage.listOutputs('asset-a-1')).rejects.toThrow(/signature|access|denied/i);
  });
});
