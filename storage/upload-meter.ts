import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { UploadTooLargeError, type StoredBlob } from './asset-storage.js';

/**
 * A pass-through that hashes and counts an upload on its way into a store, and fails it with
 * UploadTooLargeError at the first byte over maxBytes. blob() is the upload's digest and size once the
 * stream has ended.
 */
export function uploadMeter(maxBytes: number): { meter: Transform; blob(): StoredBlob } {
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) return done(new UploadTooLargeError(maxBytes));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { meter, blob: () => ({ sha256: hash.digest('hex'), size }) };
}
