import { z } from 'zod';
import { FAILURE_CODES, jobFailureCodeOf, type FailureCode as CatalogueCode, type JobFailureCode as JobCode } from './failure-catalogue.js';

/**
 * The failure catalogue (common/failure-catalogue.ts, plain data the workflow bundle can import) and the
 * zod schemas the page, the CLI and the API read its codes with.
 */
export * from './failure-catalogue.js';

/** Every failure's stable code; parses one, as the page and the CLI do with any code the farm sends. */
export type FailureCode = CatalogueCode;
export const FailureCode = z.enum(FAILURE_CODES);

/** A job failure's code (the `error.type` of a `failed` event); an unknown one reads as INTERNAL (jobFailureCodeOf). */
export type JobFailureCode = JobCode;
export const JobFailureCode = z.unknown().transform(jobFailureCodeOf);

/** Codes of a socket `error` frame. */
export const SocketErrorCode = FailureCode.extract(['BAD_MESSAGE', 'JOB_NOT_FOUND', 'UNAVAILABLE', 'TOO_MANY_SUBSCRIPTIONS']);
export type SocketErrorCode = z.infer<typeof SocketErrorCode>;

/** Codes of the API's JSON error bodies; an unknown one reads as INTERNAL. */
export const ApiErrorCode = FailureCode.catch('INTERNAL');
