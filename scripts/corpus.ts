import { parseArgs } from 'node:util';
import { runCorpus } from '../test/helpers/corpus-run.js';
import { startNpmStartStack } from '../test/helpers/started-stack.js';

/**
 * `npm run corpus`: issue 17's check. Starts the stack as `npm start` does (on free ports, data in a
 * temporary folder), submits a seeded corpus of valid, invalid and hostile uploads through the real HTTP
 * API with a healthy DamagedHelmet job among them, prints the figures, and exits non-zero when a promise
 * is broken. `--count` (default 300) and `--seed` (default 17) choose the corpus.
 */
const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    seed: { type: 'string', default: '17' },
    'in-flight': { type: 'string', default: '4' },
  },
});
const count = Number(values.count);
const seed = Number(values.seed);
const inFlight = Number(values['in-flight']);
if (![count, seed, inFlight].every((n) => Number.isInteger(n) && n > 0)) {
  console.error('--count, --seed and --in-flight take positive whole numbers, e.g. npm run corpus -- --count 300 --seed 17');
  process.exit(64);
}
const log = (line: string) => console.log(`[corpus] ${line}`);
log('Starting the stack (as npm start does, on free ports)…');
const stack = await startNpmStartStack({ env: { API_SUBMIT_PER_MINUTE: '100000' } });
let code = 1;
try {
  log(`Stack ready: ${stack.apiUrl}; submitting ${count} uploads (seed ${seed}, ${inFlight} in flight)…`);
  const { figures } = await runCorpus(stack, { count, seed, inFlight, log });
  console.log(JSON.stringify(figures, null, 2));
  const kept =
    figures.valid.completedPercent >= 95 &&
    figures.valid.completed + figures.valid.failedNamingFeature === figures.valid.total &&
    figures.invalid.percent === 100 &&
    figures.hostile.refusedOrContained === figures.hostile.total &&
    figures.roundTrip.completed === figures.roundTrip.outputs &&
    figures.unicode.roundTripped === figures.unicode.checked &&
    figures.workerCrashes === 0 &&
    figures.hangs === 0 &&
    figures.retriesOfDeterministicFailures === 0 &&
    figures.longestInvalidSeconds < 60 &&
    figures.filesOutsideDataDir.length === 0 &&
    figures.healthy.status === 'COMPLETED';
  log(kept ? 'Every promise kept.' : `Broken promises: ${figures.problems.length} problem(s) listed above.`);
  code = kept ? 0 : 1;
} finally {
  await stack.stop();
}
process.exit(code);
