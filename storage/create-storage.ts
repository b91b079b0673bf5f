import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { StorageEnv } from '../common/config.js';
import type { AssetStorage } from './asset-storage.js';
import { LocalStorage } from './local-storage.js';
import { S3Storage } from './s3-storage.js';

/** The S3 client a validated STORAGE=s3 configuration describes. */
export function s3ClientOf(config: StorageEnv): S3Client {
  return new S3Client(s3ClientConfigOf(config));
}

/** The S3 client settings of a validated STORAGE=s3 configuration (also for @tus/s3-store, which builds its own client). */
export function s3ClientConfigOf(config: StorageEnv): S3ClientConfig {
  return {
    region: config.S3_REGION,
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    ...(config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY } }
      : {}),
    // Checksums only where the operation requires them: several S3-compatible servers refuse the
    // newer default trailing checksums on streamed uploads.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/** The storage every process of a stack uses, from its validated configuration (STORAGE and the S3_ variables). */
export function createStorage(config: StorageEnv): AssetStorage {
  if (config.STORAGE === 'local') return new LocalStorage(config.DATA_DIR);
  // The config schema refuses STORAGE=s3 without a bucket; this guards callers that built the object by hand.
  if (!config.S3_BUCKET) throw new Error('STORAGE=s3 needs S3_BUCKET');
  return new S3Storage(s3ClientOf(config), config.S3_BUCKET, config.S3_PREFIX);
}
