import type { Command } from 'commander';
import { printJson, signedInClient } from '../session.js';
import { followJob } from './watch.js';

export function registerRetry(program: Command): void {
  program
    .command('retry')
    .description('run a finished job again with the same files and options; prints the new job id')
    .argument('<id>', 'job id')
    .option('--watch', 'follow the new job to its end; exit 0 if it completes, 1 if not')
    .option('--json', 'print the API answer as JSON (with --watch, then NDJSON messages)')
    .action(async (id: string, options: { watch?: boolean; json?: boolean }) => {
      const client = await signedInClient();
      const answer = await client.retry(id);
      if (options.json) printJson(answer);
      else process.stdout.write(`${answer.jobId}\n`);
      if (options.watch) process.exitCode = await followJob(client, answer.jobId, { json: Boolean(options.json), fromStart: true });
    });
}
