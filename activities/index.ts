export { createHpcActivities, type HpcActivities, type HpcActivityDeps } from './hpc-activities.js';
export { createJobEventActivities, type JobEventActivities } from './job-event-activities.js';
export { jobInputActivities, type CheckedJobInput, type JobInputActivities } from './job-input-activities.js';
