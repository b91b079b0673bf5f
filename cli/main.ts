import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { z } from 'zod';
import { PROJECT_ROOT } from '../common/config.js';
import { CliError, EXIT } from './cli-error.js';
import { registerCancel } from './commands/cancel.js';
import { registerDownload } from './commands/download.js';
import { registerList } from './commands/list.js';
import { registerLogin } from './commands/login.js';
import { registerLogs } from './commands/logs.js';
import { registerRetry } from './commands/retry.js';
import { registerSubmit } from './commands/submit.js';
import { registerWatch } from './commands/watch.js';

const EXIT_CODES_HELP = `
Exit codes: 0 done (job completed), 1 job failed/cancelled or request refused, 2 usage,
3 not signed in or token refused, 4 API unreachable, 130 stopped watching with Ctrl-C.
Environment: ASSET_FARM_API and ASSET_FARM_TOKEN override the saved login (for CI);
ASSET_FARM_CONFIG moves the config file (default ~/.config/asset-farm/config.json).`;

/** The CLI ships with the repository, so its version is the project's. */
function projectVersion(): string {
  const pkg = z.object({ version: z.string() }).safeParse(JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')));
  return pkg.success ? pkg.data.version : 'unknown';
}

/** The `asset-farm` program: every command, with usage errors turned into exit code 2. */
function buildProgram(): Command {
  const program = new Command('asset-farm')
    .description('Submit 3D assets to asset-farm, follow their jobs live and fetch the results.')
    .version(projectVersion())
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run `asset-farm --help` or `asset-farm <command> --help` for usage)')
    .exitOverride();
  for (const register of [
    registerLogin,
    registerSubmit,
    registerList,
    registerWatch,
    registerCancel,
    registerRetry,
    registerDownload,
    registerLogs,
  ]) {
    register(program);
  }
  // Subcommands inherit neither exitOverride nor the hint, so set them on each.
  for (const command of program.commands)
    command.exitOverride().showHelpAfterError(`(run \`asset-farm ${command.name()} --help\` for usage)`);
  return program;
}

/** Runs the CLI and returns the exit code; messages for the user go to stderr. */
async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE; // commander printed the message
    if (err instanceof CliError) {
      process.stderr.write(`asset-farm: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`asset-farm: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.JOB_FAILED;
  }
}

// Exit explicitly: stdout and stderr are synchronous for files and pipes, and a stray keep-alive socket must
// not keep a CI step waiting.
process.exit(await runCli(process.argv));
