import fs from 'node:fs/promises';
import path from 'node:path';
import type { ValidationSummary } from '../../common/pipeline.js';
import { assertUrisStayInUpload, readGltfJson, resolveUploadUri } from '../asset-io.js';
import { validateGltfBytes } from '../gltf-validation.js';
import { InvalidAssetError } from '../invalid-asset-error.js';
import type { StageJob, StageProgress } from '../stage-job.js';

/**
 * Runs the Khronos glTF-Validator over the upload. Errors end the job (InvalidAsset with every error as
 * details); warnings are kept for the report. URIs are checked before the validator may load anything.
 */
export async function validateStage(job: StageJob, progress: StageProgress): Promise<ValidationSummary> {
  progress.start(2, 'steps', `Validating ${job.assetName}`);
  const bytes = await fs.readFile(path.join(job.inputDir, job.mainFile));
  assertUrisStayInUpload(readGltfJson(bytes, job.mainFile), job.inputDir, job.fileNames);
  progress.update(1, 'Running glTF-Validator');
  const outcome = await validateGltfBytes(bytes, {
    uri: job.mainFile,
    resolve: async (uri) => {
      const file = resolveUploadUri(uri, job.inputDir, job.fileNames);
      if (!file) throw new Error(`Not an external resource: ${uri.slice(0, 40)}`);
      return fs.readFile(file);
    },
  });
  if (outcome.errors > 0) {
    const first = outcome.errorMessages[0];
    throw new InvalidAssetError(
      `${job.assetName} failed glTF validation with ${outcome.errors} error(s)` +
        (first ? `, first: ${first.code} at ${first.pointer ?? '/'}: ${first.message}` : '') +
        '. Fix the export and upload again.',
      outcome.errorMessages,
    );
  }
  progress.update(2, `${outcome.warnings} warning(s)`);
  return { errors: outcome.errors, warnings: outcome.warnings, messages: outcome.messages };
}
