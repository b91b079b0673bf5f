import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../common/config.js';

const WEB = path.join(PROJECT_ROOT, 'web');
const BUILT_PAGE = path.join(WEB, 'dist', 'index.html');
/** What the page is built from: its own sources and the shared types it imports. */
const INPUTS = [
  path.join(WEB, 'index.html'),
  path.join(WEB, 'vite.config.ts'),
  path.join(WEB, 'src'),
  path.join(WEB, 'public'),
  path.join(PROJECT_ROOT, 'common'),
];

async function newestMtime(entry: string): Promise<number> {
  const info = await stat(entry).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const children = await readdir(entry);
  const times = await Promise.all(children.map((c) => newestMtime(path.join(entry, c))));
  return Math.max(info.mtimeMs, ...times);
}

/**
 * Builds web/dist with Vite when it is missing or older than any of its inputs, so `npm start` and the
 * browser tests always serve the current page without rebuilding it every time.
 */
export async function buildWebIfStale(log: (line: string) => void = console.log): Promise<'built' | 'fresh'> {
  const built = (await stat(BUILT_PAGE).catch(() => null))?.mtimeMs ?? 0;
  const sources = Math.max(...(await Promise.all(INPUTS.map(newestMtime))));
  if (built > 0 && built >= sources) return 'fresh';
  log(built === 0 ? 'web: building the page (web/dist is missing, about 30 s)…' : 'web: rebuilding the page (sources changed)…');
  const started = performance.now();
  const { build } = await import('vite');
  await build({ configFile: path.join(WEB, 'vite.config.ts'), logLevel: 'warn' });
  log(`web: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 'built';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildWebIfStale().then(
    (outcome) => outcome === 'fresh' && console.log('web: web/dist is up to date'),
    (err: unknown) => {
      console.error('web: the page did not build:', err);
      process.exit(1);
    },
  );
}
