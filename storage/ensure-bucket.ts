import path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { loadConfigOrExit, type StorageEnv, storageSchema } from '../common/config.js';
import { s3ClientOf } from './create-storage.js';
import { isNotFound } from './s3-object-store.js';

/**
 * Creates S3_BUCKET when the server does not have it yet (a fresh self-hosted S3 server starts with no
 * bucket); an existing bucket is left as it is. Returns whether it created one.
 */
export async function ensureBucket(config: StorageEnv): Promise<boolean> {
  if (config.STORAGE !== 's3' || !config.S3_BUCKET) throw new Error('ensureBucket needs STORAGE=s3 and S3_BUCKET');
  const client = s3ClientOf(config);
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: config.S3_BUCKET }));
      return false;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    await client.send(new CreateBucketCommand({ Bucket: config.S3_BUCKET }));
    return true;
  } finally {
    client.destroy();
  }
}

/** `npm run storage:bucket` (and compose's s3-setup): the bucket the STORAGE=s3 variables name, created if missing. */
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const config = loadConfigOrExit(storageSchema, 'storage:bucket');
  const created = await ensureBucket(config);
  console.log(`[storage:bucket] bucket ${config.S3_BUCKET} ${created ? 'created' : 'already exists'} at ${config.S3_ENDPOINT ?? 'AWS S3'}`);
}
