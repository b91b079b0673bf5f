import type { Command } from 'commander';
import type { JobHistoryEntry } from '../../common/job-history.js';
import { printJson, signedInClient } from '../session.js';

/** One history entry as a log line: time, event, the activity and its stage, attempt, failure. */
export function historyLine(entry: JobHistoryEntry): string {
  const parts = [entry.time.replace('T', ' ').replace('Z', ''), entry.type];
  if (entry.activityType) parts.push(entry.stage ? `${entry.activityType} [${entry.stage}]` : entry.activityType);
  if (entry.attempt) parts.push(`attempt ${entry.attempt}`);
  if (entry.failure) parts.push(`- ${entry.failure}`);
  return parts.join('  ');
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("the job's history in brief: what ran, on which attempt, and why it failed")
    .argument('<id>', 'job id')
    .option('--json', 'print {jobId, events} as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const history = await (await signedInClient()).history(id);
      if (options.json) printJson(history);
      else for (const entry of history.events) process.stdout.write(historyLine(entry) + '\n');
    });
}
