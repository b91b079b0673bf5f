import { InvalidArgumentError, Option, type Command } from 'commander';
import type { JobSummary } from '../api-schemas.js';
import { printJson, signedInClient } from '../session.js';

/** --state names and the Temporal execution statuses each covers. */
const STATE_STATUSES = {
  running: ['RUNNING'],
  completed: ['COMPLETED'],
  failed: ['FAILED', 'TIMED_OUT', 'TERMINATED'],
  cancelled: ['CANCELLED', 'CANCELED'],
} as const satisfies Record<string, readonly string[]>;
type StateName = keyof typeof STATE_STATUSES;

/** Pages fetched at most when filtering by state, so a long history cannot keep the command busy. */
const MAX_PAGES = 20;

function parseLimit(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new InvalidArgumentError('give a whole number from 1 to 100');
  return limit;
}

function printTable(jobs: JobSummary[]): void {
  if (jobs.length === 0) {
    process.stdout.write('No jobs.\n');
    return;
  }
  const rows = [
    ['JOB', 'STATUS', 'STAGE', 'PRIORITY', 'ASSET', 'STARTED'],
    ...jobs.map((j) => [j.jobId, j.status, j.stage ?? '-', j.priority ?? '-', j.assetName, j.startTime.replace('T', ' ').slice(0, 19)]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  for (const row of rows)
    process.stdout.write(
      row
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd() + '\n',
    );
}

export function registerList(program: Command): void {
  program
    .command('list')
    .description('your jobs, newest first')
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(Object.keys(STATE_STATUSES)))
    .option('--limit <n>', 'most jobs to show (1-100)', parseLimit, 25)
    .option('--json', 'print a JSON array of jobs')
    .action(async (options: { state?: StateName; limit: number; json?: boolean }) => {
      const client = await signedInClient();
      const wanted: readonly string[] | null = options.state ? STATE_STATUSES[options.state] : null;
      const jobs: JobSummary[] = [];
      let before: string | undefined;
      for (let page = 0; page < MAX_PAGES && jobs.length < options.limit; page++) {
        const answer = await client.listJobs({ limit: wanted ? 100 : options.limit, ...(before ? { before } : {}) });
        jobs.push(...answer.jobs.filter((j) => !wanted || wanted.includes(j.status)));
        if (!answer.nextBefore) break;
        before = answer.nextBefore;
      }
      const shown = jobs.slice(0, options.limit);
      if (options.json) printJson(shown);
      else printTable(shown);
    });
}
