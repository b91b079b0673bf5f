import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import { EXIT, type ExitCode } from '../cli-error.js';
import { watchJob, type WatchResult } from '../job-watcher.js';
import { createJobView } from '../progress-view.js';
import { signedInClient } from '../session.js';
import { outcomeOfStatus } from '../socket-messages.js';

/** Follows a job to its end in the chosen view; the exit code says how it ended (0 completed, 1 otherwise). */
export async function followJob(client: ApiClient, jobId: string, options: { json: boolean; fromStart?: boolean }): Promise<ExitCode> {
  // REST first: an unknown id, a refused token or an unreachable API is reported before any socket is opened.
  const job = await client.getJob(jobId);
  const view = createJobView({ json: options.json, out: process.stdout });
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  let result: WatchResult;
  try {
    result = await watchJob(client, jobId, {
      onMessage: (message) => view.message(message),
      onReconnecting: (attempt, reason) => view.reconnecting(attempt, reason),
      endedAs: outcomeOfStatus(job.status),
      fromStart: Boolean(options.fromStart),
      signal: interrupt.signal,
    });
  } catch (err) {
    view.abandon();
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  view.finish(jobId, result);
  // A batch completes even when some of its assets failed: those make the exit 1 too.
  const failedAssets = (result.event?.result as { failed?: number } | undefined)?.failed ?? 0;
  return result.outcome === 'completed' && failedAssets === 0 ? EXIT.OK : EXIT.JOB_FAILED;
}

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('follow a job live: a bar per stage on a terminal, a line per change in CI; exit 0 if it completes, 1 if not')
    .argument('<id>', 'job id')
    .option('--json', 'print every socket message as one JSON object per line (NDJSON)')
    .action(async (id: string, options: { json?: boolean }) => {
      process.exitCode = await followJob(await signedInClient(), id, { json: Boolean(options.json) });
    });
}
