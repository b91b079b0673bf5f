import { ApiClient } from './api-client.js';
import { resolveCredentials, resumeFilePath } from './cli-config.js';

/** An API client for the signed-in user (config file, or ASSET_FARM_API / ASSET_FARM_TOKEN). */
export async function signedInClient(env: NodeJS.ProcessEnv = process.env): Promise<ApiClient> {
  const { api, token } = await resolveCredentials(env);
  return new ApiClient(api, token, resumeFilePath(env));
}

/** Writes one JSON document on its own line: what --json prints. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}
