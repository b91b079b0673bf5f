import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import { FileStore } from '@tus/file-store';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { ERRORS, Server, type KvStore, type ServerOptions, type Upload } from '@tus/server';
import { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { FAILURES } from '../common/failures.js';
import type { StorageEnv } from '../common/config.js';
import type { AssetStorage, StoredBlob } from '../storage/asset-storage.js';
import { s3ClientConfigOf, s3ClientOf } from '../storage/create-storage.js';
import { DeleteObjectsCommand } from '@aws-sdk/client-s3';
import { ownerOf } from './auth.js';
import { sendRateLimited, type SharedRateLimit } from './rate-limits.js';
import type { FinishedUploads } from './finished-uploads.js';
import { ReuseRequest, Sha256, UploadId, UPLOADS_PATH } from '../common/uploads.js';

type TusRequest = Parameters<NonNullable<ServerOptions['onIncomingRequest']>>[0];
/** A refusal @tus/server sends as it is: status and a plain-text body. */
type TusRefusal = { status_code: number; body: string };

function refusal(status: number, code: string, message: string): TusRefusal {
  return { status_code: status, body: `${code}: ${message}\n` };
}

/**
 * S3Store caches each upload's info in the process by default: another API process finishing or the sweep
 * expiring the upload leaves that copy stale (a HEAD then answers "complete" for an upload that is gone).
 * One GET of the small .info object per request instead.
 */
const NO_CACHE: KvStore<MetadataValue> = {
  get: () => Promise.resolve(undefined),
  set: () => Promise.resolve(),
  delete: () => Promise.resolve(),
};

export interface ResumableUploadsDeps {
  storage: AssetStorage;
  uploads: FinishedUploads;
  /**
   * Where partial uploads are: with STORAGE=local the API's own DATA_DIR/uploads/resumable; with STORAGE=s3
   * the bucket (S3_PREFIX + uploads/resumable/, as S3 multipart uploads), so that every API process behind
   * the balancer can resume an upload another one began.
   */
  config: StorageEnv;
  /** Origins allowed to call the API from another site's page (API_CORS_ORIGINS; api/cors.ts answers preflights). */
  corsOrigins: readonly string[];
  /** Uploads each user may create (POST /api/uploads) in a window. */
  createLimit: SharedRateLimit;
  /** Largest file, from Upload-Length at creation, before any byte is written. */
  maxBytes: number;
  /** Partial uploads older than this (from their creation) are refused and deleted by sweep(). */
  expiryMs: number;
  log: Logger;
}

export interface ResumableUploads {
  /** Mounted at UPLOADS_PATH behind requireOwner: the tus endpoint plus POST /reuse. */
  router: Router;
  /** Deletes partial uploads past their expiry and releases finished ones no job named; returns how many. */
  sweep(): Promise<number>;
}

/**
 * Resumable uploads with the tus protocol (@tus/server): a client creates an upload with its length,
 * sends bytes with PATCH, and after a drop asks HEAD for the offset and goes on from there. Each upload
 * belongs to the token's owner; another user's HEAD, PATCH or DELETE is answered like an unknown id.
 * When the last byte arrives the file is hashed into the content-addressed store (the hash the client
 * announced in metadata `sha256` must match) and its partial copy is removed, so no bytes are kept twice.
 */
/** The folder of partial uploads under STORAGE=local, made now: FileStore makes it later, after the first expiry sweep may have looked. */
function localUploadsDir(dataDir: string): string {
  const dir = path.join(dataDir, 'uploads', 'resumable');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function resumableUploads(deps: ResumableUploadsDeps): ResumableUploads {
  const { config } = deps;
  const s3 = config.STORAGE === 's3' && config.S3_BUCKET ? { bucket: config.S3_BUCKET } : null;
  const datastore = s3
    ? new S3Store({
        s3ClientConfig: { ...s3ClientConfigOf(config), ...s3 },
        expirationPeriodInMilliseconds: deps.expiryMs,
        cache: NO_CACHE,
      })
    : new FileStore({ directory: localUploadsDir(config.DATA_DIR), expirationPeriodInMilliseconds: deps.expiryMs });
  // S3Store keys objects by the upload id, so there the id carries the prefix; URLs carry only the hex.
  const keyPrefix = s3 ? `${config.S3_PREFIX}uploads/resumable/` : '';
  const hexOf = (key: string) => key.slice(keyPrefix.length);
  const s3Client = s3 ? s3ClientOf(config) : null;
  /** Removes a finished upload's copy. S3Store's remove aborts the multipart upload, which S3 refuses once completed. */
  async function removeFinished(id: string): Promise<void> {
    if (!s3Client || !s3) return datastore.remove(id);
    await s3Client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: [{ Key: id }, { Key: `${id}.info` }] } }));
  }
  const ownerOfTus = (req: TusRequest): string => {
    // Express's response, which requireOwner gave the token's owner, under srvx's Node request.
    const res = (req.runtime as { node?: { res?: ServerResponse } } | undefined)?.node?.res;
    if (!res) throw refusal(500, FAILURES.INTERNAL.code, 'The upload request lost its sign-in.');
    return ownerOf(res as unknown as Response).id;
  };
  const tus = new Server({
    path: UPLOADS_PATH,
    datastore,
    maxSize: deps.maxBytes,
    // @tus/server answers `*` by default; the API's allowlist holds here too (none: no CORS header at all).
    allowedOrigins: (origin) => deps.corsOrigins.includes(origin),
    // Ids are random hex; anything else in the URL never reaches the store.
    namingFunction: () => `${keyPrefix}${randomBytes(16).toString('hex')}`,
    getFileIdFromRequest: (_req, id) => (id && UploadId.safeParse(id).success ? `${keyPrefix}${id}` : undefined),
    generateUrl: (_req, { path: base, id }) => `${base}/${hexOf(id)}`,
    async onIncomingRequest(req, id) {
      if (req.method === 'POST' || req.method === 'OPTIONS') return;
      const upload = await datastore.getUpload(id);
      if (upload.metadata?.owner !== ownerOfTus(req)) throw ERRORS.FILE_NOT_FOUND;
    },
    async onUploadCreate(req, upload) {
      if (upload.sizeIsDeferred)
        throw refusal(400, FAILURES.BAD_REQUEST.code, 'Send Upload-Length: the farm checks the size before it accepts a byte.');
      const sha256 = upload.metadata?.sha256;
      if (sha256 != null && !Sha256.safeParse(sha256).success)
        throw refusal(400, FAILURES.BAD_REQUEST.code, 'Metadata sha256 must be the file’s lowercase hex sha256.');
      // The owner comes from the token, never from what the client put in the metadata.
      return { metadata: { ...upload.metadata, owner: ownerOfTus(req) } };
    },
    async onUploadFinish(req, upload) {
      await finish(ownerOfTus(req), upload);
      return {};
    },
    onResponseError(req, err) {
      if ('status_code' in err) return undefined;
      deps.log.error({ err, url: req.url }, 'resumable upload failed');
      return undefined;
    },
  });

  async function finish(owner: string, upload: Upload): Promise<void> {
    let blob: StoredBlob;
    try {
      blob = await deps.storage.putUpload(await datastore.read(upload.id), deps.maxBytes);
    } catch (err) {
      deps.log.error({ err, owner, uploadId: upload.id }, 'could not store a finished upload');
      throw refusal(507, FAILURES.STORAGE.code, `${FAILURES.STORAGE.message} ${FAILURES.STORAGE.advice}`);
    }
    const announced = upload.metadata?.sha256;
    if (announced && announced !== blob.sha256) {
      await deps.storage.settleUpload(blob, 'discarded');
      await removeFinished(upload.id);
      throw refusal(
        400,
        FAILURES.UPLOAD_HASH_MISMATCH.code,
        `received bytes have sha256 ${blob.sha256}, not the announced ${announced}. ${FAILURES.UPLOAD_HASH_MISMATCH.advice}`,
      );
    }
    // Held for the job that will name the upload id (a job start may come from another API process),
    // and released by the sweep once the wait is over: an upload no job names leaves nothing behind.
    await hold(hexOf(upload.id), owner, blob);
    await deps.storage.settleUpload(blob, 'kept');
    await removeFinished(upload.id);
    deps.log.info({ owner, uploadId: hexOf(upload.id), sha256: blob.sha256, size: blob.size }, 'upload finished');
  }

  /** The storage's hold of a finished upload's blob until a job retains it too: a job of its own. */
  const holderOf = (uploadId: string) => `upload-${uploadId}`;
  async function hold(uploadId: string, owner: string, blob: StoredBlob): Promise<void> {
    await deps.storage.retainInputs(holderOf(uploadId), [blob]);
    await deps.uploads.add(uploadId, owner, blob);
  }
  /** Releases finished uploads no job named in time; the store deletes a blob no job retains. */
  async function releaseOverdue(): Promise<number> {
    const overdue = await deps.uploads.overdue();
    for (const id of overdue) {
      await deps.storage.deleteJob(holderOf(id));
      await deps.uploads.released(id);
    }
    return overdue.length;
  }

  const router = Router();
  // The second upload of the same bytes by the same owner sends none: the client asks with the hash first.
  router.post('/reuse', async (req, res) => {
    const body = ReuseRequest.safeParse(req.body);
    if (!body.success) {
      res.status(400).json({ error: { code: FAILURES.BAD_REQUEST.code, message: 'Send {"sha256":"<64 hex>","size":<bytes>}.' } });
      return;
    }
    const owner = ownerOf(res).id;
    const blob = body.data;
    const held = (await deps.uploads.holds(owner, blob)) && (await deps.storage.hasUpload(blob));
    if (!held) {
      res.status(404).json({ error: { code: FAILURES.UPLOAD_NOT_HELD.code, message: FAILURES.UPLOAD_NOT_HELD.message } });
      return;
    }
    const uploadId = UploadId.parse(randomBytes(16).toString('hex'));
    await hold(uploadId, owner, blob);
    res.status(201).json({ uploadId, ...blob, reused: true });
  });
  router.post('/', async (req, res, next) => {
    const waitMs = await deps.createLimit.take(ownerOf(res).id);
    if (waitMs === 0) return next();
    req.resume();
    sendRateLimited(res, waitMs, FAILURES.TOO_MANY_UPLOADS.code, 'Too many files uploaded in a short time');
  });
  router.use((req, res) => {
    // tus has no GET (Express would route HEAD with it, so checked here); a partial upload is never read back.
    if (req.method === 'GET') {
      res
        .status(405)
        .json({ error: { code: FAILURES.NOT_FOUND.code, message: 'Uploads are sent with the tus protocol; they are not read back.' } });
      return;
    }
    void (async () => {
      // A finished upload's partial copy is gone, but a client whose last answer was lost asks HEAD again:
      // it is told the upload is complete (its owner only), instead of 404 and sending the file again.
      const id = UploadId.safeParse(req.path.slice(1));
      const finished = req.method === 'HEAD' && id.success ? await deps.uploads.get(ownerOf(res).id, id.data) : null;
      if (finished) {
        res
          .status(200)
          .set({
            'tus-resumable': '1.0.0',
            'upload-offset': String(finished.size),
            'upload-length': String(finished.size),
            'cache-control': 'no-store',
          })
          .end();
        return;
      }
      // Express strips the mount path; tus builds upload URLs from the full one.
      req.url = req.originalUrl;
      await tus.handle(req, res);
    })().catch((err: unknown) => {
      deps.log.error({ err }, 'resumable upload request failed');
      if (!res.headersSent) res.status(500).end();
    });
  });
  return {
    router,
    sweep: async () => (await tus.cleanUpExpiredUploads()) + (await releaseOverdue()),
  };
}
