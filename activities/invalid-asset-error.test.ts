import { describe, expect, it } from 'vitest';
import { deterministicFailure, InvalidAssetError } from './invalid-asset-error.js';

/** Errors of the kinds a stage meets, and whether the same input meets them again on every attempt. */
function errnoError(code: string): Error {
  return Object.assign(new Error(`${code}: operation failed, open '/data/work/x'`), { code });
}

describe('which stage errors fail on the first attempt', () => {
  it('fails recursion, string-length and programming errors at once, each with a sentence and its own code', () => {
    const cases: [Error, string, string][] = [
      [new RangeError('Maximum call stack size exceeded'), 'UNSUPPORTED_ASSET', 'NESTING_TOO_DEEP'],
      [new RangeError('Invalid string length'), 'ASSET_LIMIT', 'ASSET_TOO_LARGE'],
      [new RangeError('Array buffer allocation failed'), 'ASSET_LIMIT', 'ASSET_TOO_LARGE'],
      [new TypeError("Cannot read properties of undefined (reading 'forEach')"), 'UNSUPPORTED_ASSET', 'PIPELINE_FAULT'],
      [new TypeError("Cannot read properties of null (reading 'setTexCoord')"), 'UNSUPPORTED_ASSET', 'PIPELINE_FAULT'],
      [new Error('Assertion failed'), 'UNSUPPORTED_ASSET', 'PIPELINE_FAULT'],
      [new RangeError('Offset is outside the bounds of the DataView'), 'UNSUPPORTED_ASSET', 'PIPELINE_FAULT'],
    ];
    for (const [err, type, code] of cases) {
      const failure = deterministicFailure(err, 'модель.glb');
      expect(failure, err.message).toBeInstanceOf(InvalidAssetError);
      expect(failure, err.message).toMatchObject({ code: type, details: [{ code, severity: 'error' }] });
      // What the artist reads names the file and never repeats the library's words.
      expect(failure!.message).toContain('модель.glb');
      expect(failure!.message).not.toContain(err.message);
    }
  });

  it('leaves storage and other transient errors retryable', () => {
    for (const code of ['EIO', 'ENOSPC', 'EAGAIN', 'EMFILE', 'ECONNRESET'])
      expect(deterministicFailure(errnoError(code), 'a.glb'), code).toBeNull();
    // A missing intermediate (its stage must run again) is a plain Error with an ENOENT cause.
    const missing = new Error('optimized.glb is missing from the job’s work folder: run optimizeAsset first', {
      cause: errnoError('ENOENT'),
    });
    expect(deterministicFailure(missing, 'a.glb')).toBeNull();
    expect(deterministicFailure(new TypeError('fetch failed', { cause: errnoError('ECONNREFUSED') }), 'a.glb')).toBeNull();
    expect(deterministicFailure('a string', 'a.glb')).toBeNull();
  });
});
