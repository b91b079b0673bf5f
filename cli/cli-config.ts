import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CliError } from './cli-error.js';

/** Where the API runs when neither the config file nor ASSET_FARM_API says: the local stack. */
export const DEFAULT_API = 'http://localhost:3000';

const ApiUrl = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ''));

/** What `asset-farm login` stores. */
const StoredCredentials = z.object({
  api: ApiUrl,
  token: z.string().min(1),
  user: z.string().optional(),
});
export type StoredCredentials = z.infer<typeof StoredCredentials>;

/** The environment the CLI reads; ASSET_FARM_API / ASSET_FARM_TOKEN override the file (for CI). */
const CliEnv = z.object({
  ASSET_FARM_CONFIG: z.string().min(1).optional(),
  ASSET_FARM_API: ApiUrl.optional(),
  ASSET_FARM_TOKEN: z.string().min(1).optional(),
});
type CliEnv = z.infer<typeof CliEnv>;

function readEnv(env: NodeJS.ProcessEnv): CliEnv {
  const parsed = CliEnv.safeParse({
    ASSET_FARM_CONFIG: env.ASSET_FARM_CONFIG || undefined,
    ASSET_FARM_API: env.ASSET_FARM_API || undefined,
    ASSET_FARM_TOKEN: env.ASSET_FARM_TOKEN || undefined,
  });
  if (!parsed.success) {
    const names = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new CliError('BAD_ARGUMENT', `${names} is not valid: ASSET_FARM_API must be an http(s) URL like ${DEFAULT_API}.`);
  }
  return parsed.data;
}

/** The config file: ASSET_FARM_CONFIG, else ~/.config/asset-farm/config.json (XDG_CONFIG_HOME respected). */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const configured = readEnv(env).ASSET_FARM_CONFIG;
  if (configured) return path.resolve(configured);
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'asset-farm', 'config.json');
}

/** Where the CLI keeps the addresses of unfinished uploads, beside the config file. */
export function resumeFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.dirname(configPath(env)), 'unfinished-uploads.json');
}

async function readStored(file: string): Promise<StoredCredentials | null> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = null;
  }
  const parsed = StoredCredentials.safeParse(json);
  if (!parsed.success) {
    throw new CliError('NOT_SIGNED_IN', `${file} is not a valid asset-farm config; run \`asset-farm login\` again to rewrite it.`);
  }
  return parsed.data;
}

/** Writes the credentials readable by the user only (0600), atomically so a crash never leaves half a file. */
export async function saveCredentials(credentials: StoredCredentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = configPath(env);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(StoredCredentials.parse(credentials), null, 2) + '\n', { mode: 0o600 });
  // writeFile's mode applies only when it creates the file; make sure of it either way.
  await chmod(temp, 0o600);
  await rename(temp, file);
  return file;
}

/** The API URL to talk to: ASSET_FARM_API, else the config file's, else the local stack. */
export async function resolveApi(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = readEnv(env).ASSET_FARM_API;
  if (fromEnv) return fromEnv;
  return (await readStored(configPath(env)))?.api ?? DEFAULT_API;
}

/** API URL and token for a command that needs to be signed in. */
export async function resolveCredentials(env: NodeJS.ProcessEnv = process.env): Promise<{ api: string; token: string }> {
  const vars = readEnv(env);
  const stored = await readStored(configPath(env));
  const api = vars.ASSET_FARM_API ?? stored?.api ?? DEFAULT_API;
  const token = vars.ASSET_FARM_TOKEN ?? stored?.token;
  if (!token) {
    throw new CliError(
      'NOT_SIGNED_IN',
      'Not signed in: run `asset-farm login --user <name>` (local stack) or `asset-farm login --token <jwt>`, or set ASSET_FARM_TOKEN.',
    );
  }
  return { api, token };
}

/** Parses an --api value, or explains what is expected. */
export function parseApiUrl(value: string): string {
  const parsed = ApiUrl.safeParse(value);
  if (!parsed.success) throw new CliError('BAD_ARGUMENT', `--api must be an http(s) URL like ${DEFAULT_API}; got "${value}".`);
  return parsed.data;
}
