import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { FileStore } from '@tus/file-store';
import { ERRORS, Server, type ServerOptions, type Upload } from '@tus/server';
import { Router, type Response } from 'express';
import type { Logger } from 'pino';
import { FAILURES } from '../common/failures.js';
import type { AssetStorage, StoredBlob } from '../storage/asset-storage.js';
import { ownerOf } from './auth.js';
import type { FinishedUploads } from './finished-uploads.js';
import { ReuseRequest, Sha256, UploadId, UPLOADS_PATH } from '../common/uploads.js';

type TusRequest = Parameters<NonNullable<ServerOptions['onIncomingRequest']>>[0];
/** A refusal @tus/server sends as it is: status and a plain-text body. */
type TusRefusal = { status_code: number; body: string };

function refusal(status: number, code: string, message: string): TusRefusal {
  return { status_code: status, body: `${code}: ${message}\n` };
}

export interface ResumableUploadsDeps {
  storage: AssetStorage;
  uploads: FinishedUploads;
  /** The API's own folder for partial uploads (never shared with workers). */
  directory: string;
  /** Largest file, from Upload-Length at creation, before any byte is written. */
  maxBytes: number;
  /** Partial uploads older than this (from their creation) are refused and deleted by sweep(). */
  expiryMs: number;
  log: Logger;
}

export interface ResumableUploads {
  /** Mounted at UPLOADS_PATH behind requireOwner: the tus endpoint plus POST /reuse. */
  router: Router;
  /** Deletes partial uploads past their expiry; returns how many. */
  sweep(): Promise<number>;
}

/**
 * Resumable uploads with the tus protocol (@tus/server): a client creates an upload with its length,
 * sends bytes with PATCH, and after a drop asks HEAD for the offset and goes on from there. Each upload
 * belongs to the token's owner; another user's HEAD, PATCH or DELETE is answered like an unknown id.
 * When the last byte arrives the file is hashed into the content-addressed store (the hash the client
 * announced in metadata `sha256` must match) and its partial copy is removed, so no bytes are kept twice.
 */
export function resumableUploads(deps: ResumableUploadsDeps): ResumableUploads {
  const datastore = new FileStore({ directory: deps.directory, expirationPeriodInMilliseconds: deps.expiryMs });
  const ownerOfTus = (req: TusRequest): string => {
    // Express's response, which requireOwner gave the token's owner, under srvx's Node request.
    const res = (req.runtime as { node?: { res?: ServerResponse } } | undefined)?.node?.res;
    if (!res) throw refusal(500, FAILURES.INTERNAL.code, 'The upload request lost its sign-in.');
    return ownerOf(res as unknown as Response).id;
  };
  const tus = new Server({
    path: UPLOADS_PATH,
    datastore,
    relativeLocation: true,
    maxSize: deps.maxBytes,
    // Ids are @tus/server's own (random hex); anything else never reaches the store.
    getFileIdFromRequest: (_req, id) => (id && UploadId.safeParse(id).success ? id : undefined),
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
      blob = await deps.storage.putUpload(datastore.read(upload.id), deps.maxBytes);
    } catch (err) {
      deps.log.error({ err, owner, uploadId: upload.id }, 'could not store a finished upload');
      throw refusal(507, FAILURES.STORAGE.code, `${FAILURES.STORAGE.message} ${FAILURES.STORAGE.advice}`);
    }
    const announced = upload.metadata?.sha256;
    if (announced && announced !== blob.sha256) {
      await deps.storage.settleUpload(blob, 'discarded');
      await datastore.remove(upload.id);
      throw refusal(
        400,
        FAILURES.UPLOAD_HASH_MISMATCH.code,
        `received bytes have sha256 ${blob.sha256}, not the announced ${announced}. ${FAILURES.UPLOAD_HASH_MISMATCH.advice}`,
      );
    }
    // Kept for the job that will name the upload id: a job start may come from another API process.
    await deps.storage.settleUpload(blob, 'kept');
    await deps.uploads.add(upload.id, owner, blob);
    await datastore.remove(upload.id);
    deps.log.info({ owner, uploadId: upload.id, sha256: blob.sha256, size: blob.size }, 'upload finished');
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
    await deps.uploads.add(uploadId, owner, blob);
    res.status(201).json({ uploadId, ...blob, reused: true });
  });
  router.use((req, res) => {
    // tus has no GET (Express would route HEAD with it, so checked here); a partial upload is never read back.
    if (req.method === 'GET') {
      res
        .status(405)
        .json({ error: { code: FAILURES.NOT_FOUND.code, message: 'Uploads are sent with the tus protocol; they are not read back.' } });
      return;
    }
    // Express strips the mount path; tus builds upload URLs from the full one.
    req.url = req.originalUrl;
    void tus.handle(req, res).catch((err: unknown) => deps.log.error({ err }, 'resumable upload request failed'));
  });
  return { router, sweep: () => tus.cleanUpExpiredUploads() };
}
