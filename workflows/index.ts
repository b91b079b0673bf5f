export { processAsset } from './process-asset.js';
