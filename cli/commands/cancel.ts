import type { Command } from 'commander';
import { printJson, signedInClient } from '../session.js';

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('cancel a running job (it cleans up and ends as cancelled)')
    .argument('<id>', 'job id')
    .option('--json', 'print the API answer as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const answer = await (await signedInClient()).cancel(id);
      if (options.json) printJson(answer);
      else process.stdout.write(`${answer.jobId} ${answer.status}; \`asset-farm watch ${answer.jobId}\` follows it to the end.\n`);
    });
}
