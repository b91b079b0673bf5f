import { describe, expect, it } from 'vitest';
import { FAILURES, FailureCode, failureOf, isStorageError, JOB_FAILURE_CODES, JobFailureCode, jobFailureCodeOf } from './failures.js';

/** Small seeded generator (mulberry32) so the variety of inputs is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the failure catalogue', () => {
  it('names every failure by its own key, with a sentence and advice', () => {
    for (const [key, failure] of Object.entries(FAILURES)) {
      expect(failure.code).toBe(key);
      expect(key).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(failure.message.length).toBeGreaterThan(5);
      expect(failure.advice.length).toBeGreaterThan(5);
    }
  });

  it('parses every catalogue code and refuses any other string', () => {
    const random = seeded(16);
    for (const code of FailureCode.options) expect(FailureCode.parse(code)).toBe(code);
    for (let i = 0; i < 200; i++) {
      const junk = Array.from({ length: 1 + Math.floor(random() * 20) }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join(
        '',
      );
      if (junk in FAILURES) continue;
      expect(FailureCode.safeParse(junk).success).toBe(false);
      expect(failureOf(junk).code).toBe('INTERNAL');
      expect(JobFailureCode.parse(junk)).toBe('INTERNAL');
    }
  });

  it("reads a job failure's code as itself, and any other value (another catalogue code, a prototype key, no string) as INTERNAL", () => {
    const jobCodes = new Set<string>(JOB_FAILURE_CODES);
    for (const code of FailureCode.options) {
      const expected = jobCodes.has(code) ? code : 'INTERNAL';
      expect([JobFailureCode.parse(code), jobFailureCodeOf(code)]).toEqual([expected, expected]);
    }
    expect(FailureCode.options.filter((code) => !jobCodes.has(code)).length).toBeGreaterThan(3);
    for (const other of ['constructor', 'toString', '__proto__', 'internal', '', undefined, null, 7, {}, ['TIMEOUT'], true]) {
      expect([JobFailureCode.parse(other), jobFailureCodeOf(other), failureOf(typeof other === 'string' ? other : undefined).code]).toEqual(
        ['INTERNAL', 'INTERNAL', 'INTERNAL'],
      );
    }
  });

  it('treats a full, read-only or forbidden disk as storage, and other errors not', () => {
    for (const code of ['ENOSPC', 'EACCES', 'EROFS']) {
      expect(isStorageError(Object.assign(new Error(`${code}: write`), { code }))).toBe(true);
    }
    for (const other of [new Error('ENOSPC in the text only'), Object.assign(new Error('gone'), { code: 'ENOENT' }), null, 'EROFS', 28]) {
      expect(isStorageError(other)).toBe(false);
    }
    expect(FAILURES.STORAGE.retryable).toBe(true);
    expect(FAILURES.INVALID_ASSET.retryable).toBe(false);
  });
});
