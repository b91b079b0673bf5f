/**
 * `npm test`: the type check and the tests side by side, failing when either fails. tsc keeps one core
 * busy for half a minute; run first, it held up every test by that much on a two-core machine. Arguments
 * go to vitest (`npm test -- test/e2e/walking-skeleton.test.ts`). Ctrl-C reaches both through the
 * terminal's process group; SIGTERM to this process is passed on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
/** A package's own script (its package.json's folder, whatever its exports map allows). */
const bin = (pkg: string, file: string) => path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);

function run(name: string, args: string[]): { child: ChildProcess; done: Promise<number> } {
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  const done = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', (err) => {
      console.error(`[test] could not start ${name}: ${err.message}`);
      resolve(1);
    });
  });
  return { child, done };
}

// Every Node process of the run (vitest's workers, each test stack's components, each CLI run) keeps
// V8's compiled code of the modules it loads here and reuses it: a component then starts on about a fifth
// less CPU, and a run starts about 150 of them on two cores. A user's own NODE_COMPILE_CACHE is kept.
process.env.NODE_COMPILE_CACHE ??= path.join(import.meta.dirname, '..', 'node_modules', '.cache', 'asset-farm', 'node-compile-cache');

const typecheck = run('tsc', [bin('typescript', 'bin/tsc'), '--noEmit', '-p', 'tsconfig.json']);
const tests = run('vitest', [bin('vitest', 'vitest.mjs'), 'run', ...process.argv.slice(2)]);
for (const signal of ['SIGTERM', 'SIGHUP'] as const)
  process.on(signal, () => {
    for (const { child } of [typecheck, tests]) child.kill(signal);
  });
const [typeErrors, testFailures] = await Promise.all([typecheck.done, tests.done]);
if (typeErrors !== 0) console.error('[test] the type check failed (see tsc above): fix the types, then run npm test again');
process.exit(typeErrors || testFailures);
