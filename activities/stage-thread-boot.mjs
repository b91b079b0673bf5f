// Entry of a stage thread. Worker threads start without the TypeScript loader the process may have (tsx
// under `npm start`, vite-node under vitest), so register tsx here, then load the TypeScript entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
