import validator from 'gltf-validator';
import { z } from 'zod';
import type { ValidationSummary, ValidatorMessage } from '../common/pipeline.js';
import { invalidAsset } from './invalid-asset-error.js';

const SEVERITIES = ['error', 'warning', 'info', 'hint'] as const;

const ValidatorReport = z.object({
  issues: z.object({
    numErrors: z.number().int(),
    numWarnings: z.number().int(),
    messages: z.array(
      z.object({
        code: z.string(),
        message: z.string(),
        severity: z.number().int().min(0).max(3),
        pointer: z.string().optional(),
      }),
    ),
    truncated: z.boolean().optional(),
  }),
});

/** Validator results with every message kept (errors included), for the caller to decide what fails. */
export interface ValidationOutcome extends ValidationSummary {
  errorMessages: ValidatorMessage[];
}

/** Messages kept in a summary: enough to act on, bounded so a broken asset cannot bloat the history. */
const MAX_KEPT_MESSAGES = 200;

/**
 * Runs the Khronos glTF-Validator on a file's bytes. `resolve` loads external resources; it must only ever
 * return the upload's own files. Images that are not images count as errors: the pipeline cannot resize them.
 */
export async function validateGltfBytes(
  bytes: Uint8Array,
  options: { uri: string; resolve?: (uri: string) => Promise<Uint8Array> },
): Promise<ValidationOutcome> {
  let raw: unknown;
  try {
    raw = await validator.validateBytes(bytes, {
      uri: options.uri,
      maxIssues: 1000,
      writeTimestamp: false,
      severityOverrides: { IMAGE_UNRECOGNIZED_FORMAT: 0 },
      externalResourceFunction: options.resolve ?? ((uri) => Promise.reject(new Error(`External resource ${uri} not available`))),
    });
  } catch (err) {
    // The validator rejects (with a string) when it cannot even tell whether the bytes are glTF or GLB.
    throw invalidAsset(`${options.uri} is neither glTF JSON nor GLB: ${String(err)}`, 'UNRECOGNIZED_FORMAT');
  }
  const report = ValidatorReport.parse(raw);
  const messages = report.issues.messages.map((m): ValidatorMessage => ({
    code: m.code,
    message: m.message,
    severity: SEVERITIES[m.severity] ?? 'info',
    ...(m.pointer ? { pointer: m.pointer } : {}),
  }));
  return {
    errors: report.issues.numErrors,
    warnings: report.issues.numWarnings,
    messages: messages.filter((m) => m.severity !== 'error').slice(0, MAX_KEPT_MESSAGES),
    errorMessages: messages.filter((m) => m.severity === 'error').slice(0, MAX_KEPT_MESSAGES),
  };
}
