import type { Command } from 'commander';
import jwt from 'jsonwebtoken';
import { OwnerId } from '../../common/progress.js';
import { ApiClient } from '../api-client.js';
import { parseApiUrl, resolveApi, saveCredentials } from '../cli-config.js';
import { CliError } from '../cli-error.js';
import { printJson } from '../session.js';

interface LoginOptions {
  api?: string;
  user?: string;
  token?: string;
  json?: boolean;
}

/** The token's subject, read without verifying it: only to say who signed in (the API verifies). */
function subjectOf(token: string): string | undefined {
  const payload = jwt.decode(token);
  return payload && typeof payload === 'object' && typeof payload.sub === 'string' ? payload.sub : undefined;
}

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('sign in: the dev login of a local stack (--user) or a studio token (--token / ASSET_FARM_TOKEN)')
    .option('--api <url>', 'API base URL (default: ASSET_FARM_API, the saved one, or http://localhost:3000)')
    .option('--user <name>', 'user name for the dev login of a local stack')
    .option('--token <jwt>', "a token from the studio's sign-in (or set ASSET_FARM_TOKEN)")
    .option('--json', 'print {api, user, config} as JSON')
    .action(async (options: LoginOptions) => {
      const api = options.api ? parseApiUrl(options.api) : await resolveApi();
      let token = options.token ?? (options.user ? undefined : process.env.ASSET_FARM_TOKEN);
      if (options.user && options.token) throw new CliError('BAD_ARGUMENT', 'Pass either --user (dev login) or --token, not both.');
      if (options.user) {
        const user = OwnerId.safeParse(options.user);
        if (!user.success) throw new CliError('BAD_ARGUMENT', `--user ${user.error.issues[0]?.message ?? 'is not valid'}.`);
        token = (await ApiClient.devLogin(api, user.data)).token;
      }
      if (!token) {
        throw new CliError('BAD_ARGUMENT', 'Pass --user <name> (local stack dev login) or --token <jwt> (or set ASSET_FARM_TOKEN).');
      }
      // Prove the token works before saving it, so a typo is caught now rather than at the next command.
      await new ApiClient(api, token).listJobs({ limit: 1 });
      const user = subjectOf(token);
      const config = await saveCredentials({ api, token, ...(user ? { user } : {}) });
      if (options.json) printJson({ api, user: user ?? null, config });
      else process.stdout.write(`Signed in to ${api}${user ? ` as ${user}` : ''} (saved in ${config}).\n`);
    });
}
