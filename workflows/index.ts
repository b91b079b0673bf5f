export { expireOutputs } from './expire-outputs.js';
export { processAsset } from './process-asset.js';
export { processBatch } from './process-batch.js';
