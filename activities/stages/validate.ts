import type { ValidationSummary } from '../../common/pipeline.js';
import { readJsonIfExists } from '../asset-io.js';
import type { StageJob, StageProgress } from '../stage-job.js';
import { validateUpload } from '../upload-check.js';
import { ValidationSummarySchema, workFiles } from '../work-files.js';

/**
 * The glTF-Validator's verdict on the upload. Inspect already ran it (the validator speaks before any
 * reader, see validateUpload) and left the summary in the work folder; this stage reports it, or runs the
 * validator again when that record is gone. Errors end the job as InvalidAsset; warnings go to the report.
 */
export async function validateStage(job: StageJob, progress: StageProgress): Promise<ValidationSummary> {
  progress.start(2, 'steps', `Validating ${job.assetName}`);
  const kept = await readJsonIfExists(workFiles.validation(job.workDir), ValidationSummarySchema);
  progress.update(1, kept ? 'glTF-Validator ran during inspect' : 'Running glTF-Validator');
  const summary = kept ?? (await validateUpload(job));
  progress.update(2, `${summary.warnings} warning(s)`);
  return summary;
}

// The stage module (activities/stage-module.ts). Validate writes nothing.
export const run = validateStage;
