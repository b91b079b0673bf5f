import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { PROJECT_ROOT } from '../common/config.js';
import { whenOrphaned } from '../scripts/lib/service-process.js';
import { resolveRedisServer, resolveTemporalCli } from '../scripts/provision.js';
import { runFanoutBenchmark } from './fanout/fanout-memory.js';
import type { BenchContext } from './lib/bench-context.js';
import { startBenchWorker, startInfra } from './lib/bench-stack.js';
import type { BenchChild } from './lib/rpc.js';
import { machineFacts, type MachineFacts } from './lib/machine.js';
import { markdownTable, type BenchResult } from './lib/report.js';
import { runOrchestrationOverheadAlone } from './pipeline/orchestration-overhead.js';
import { runCancelBenchmark, runComputeBenchmark, runPipelineBenchmarks } from './pipeline/pipeline-benchmarks.js';
import { runProgressBenchmarks } from './progress/progress-latency.js';
import { runUploadBenchmark } from './upload/upload-throughput.js';

/** Every benchmark the runner knows, by the name `--only` takes. */
const BENCHMARKS: Record<string, (ctx: BenchContext) => Promise<BenchResult[]>> = {
  progress: runProgressBenchmarks,
  fanout: async (ctx) => [await runFanoutBenchmark(ctx)],
  upload: async (ctx) => [await runUploadBenchmark(ctx)],
  pipeline: runPipelineBenchmarks,
  // Benchmark 4 on its own (already part of `pipeline`); not in the default run, which would measure it twice.
  overhead: async (ctx) => [await runOrchestrationOverheadAlone(ctx)],
  // Benchmark 7 on its own (already part of `pipeline`), without the stack that 4 and 5 need.
  compute: runComputeBenchmark,
  // Benchmark 5 on its own (already part of `pipeline`).
  cancel: runCancelBenchmark,
};
/** What runs without --only. */
const DEFAULT_BENCHMARKS = ['progress', 'fanout', 'upload', 'pipeline'];

export interface BenchRun {
  command: string;
  startedAt: string;
  finishedAt: string;
  smoke: boolean;
  repeats: number;
  machine: MachineFacts;
  /** Load average when the run started: above the core count, the machine was shared and figures are noisy. */
  sharedMachine: boolean;
  results: BenchResult[];
}

/** Runs the selected benchmarks on one shared Redis + Temporal; a benchmark that throws is reported as failed, not fatal. */
export async function runBenchmarks(options: {
  smoke: boolean;
  repeats: number;
  only: string[];
  scales?: BenchContext['scales'];
  log?: (m: string) => void;
}): Promise<BenchRun> {
  const log = options.log ?? ((m: string) => console.error(`[bench] ${m}`));
  const startedAt = new Date().toISOString();
  const redisBinary = resolveRedisServer();
  const temporalBinary = resolveTemporalCli({ allowInstall: false });
  const machine = machineFacts({ redisServer: redisBinary.path, temporalCli: temporalBinary.path });
  log(`machine: ${machine.cores} cores, ${machine.memoryGiB} GiB, load ${machine.loadAverage1m}, node ${machine.node}`);
  const infra = await startInfra();
  const shared: { worker: Promise<BenchChild> | null } = { worker: null };
  const ctx: BenchContext = {
    infra,
    smoke: options.smoke,
    repeats: options.repeats,
    scales: options.scales ?? {},
    log,
    // As many activity slots as the largest load, so every job of it runs at once (10 for fan-out's jobs).
    benchWorker: () => (shared.worker ??= startBenchWorker(infra, Math.max(10, ...(options.scales?.jobs ?? [options.smoke ? 5 : 1000])))),
  };
  const results: BenchResult[] = [];
  try {
    for (const name of options.only) {
      const bench = BENCHMARKS[name]!;
      const t0 = performance.now();
      try {
        results.push(...(await bench(ctx)));
      } catch (err) {
        log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
        results.push({
          id: name,
          title: name,
          status: 'failed',
          reason: (err as Error).message.split('\n')[0],
          rows: [],
          details: {},
          notes: [],
        });
      }
      log(`${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    if (shared.worker) await (await shared.worker.catch(() => null))?.stop();
    await infra.stop();
  }
  return {
    command: [
      'npm run bench --',
      options.smoke ? '--smoke' : '',
      `--repeats ${options.repeats}`,
      options.only.join() !== DEFAULT_BENCHMARKS.join() ? `--only ${options.only.join(',')}` : '',
      options.scales?.jobs ? `--jobs ${options.scales.jobs.join(',')}` : '',
      options.scales?.sockets ? `--sockets ${options.scales.sockets.join(',')}` : '',
      options.scales?.triangles ? `--triangles ${options.scales.triangles.join(',')}` : '',
      options.scales?.textureSize ? `--texture-size ${options.scales.textureSize}` : '',
    ]
      .filter(Boolean)
      .join(' '),
    startedAt,
    finishedAt: new Date().toISOString(),
    smoke: options.smoke,
    repeats: options.repeats,
    machine,
    sharedMachine: machine.loadAverage1m > machine.cores * 0.5,
    results,
  };
}

const SECTION_START = '<!-- bench:results:start -->';
const SECTION_END = '<!-- bench:results:end -->';

/** The generated part of BENCHMARKS.md: command, machine, table and notes of one run. */
export function resultsSection(run: BenchRun): string {
  const m = run.machine;
  const notes = run.results.flatMap((r) => r.notes.map((n) => `- ${r.title}: ${n}`));
  return [
    SECTION_START,
    `### Run of ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC${run.smoke ? ' (smoke: counts too small to mean anything)' : ''}`,
    '',
    `Command: \`${run.command}\` (${run.repeats} repeat${run.repeats === 1 ? '' : 's'}; figures are medians with min–max over repeats).`,
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}; Node ${m.node}; ${m.redis}; ${m.temporalCli}; ` +
      Object.entries(m.packages)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') +
      `. Load average at start: ${m.loadAverage1m}${run.sharedMachine ? ' (the machine was shared with other work: absolute figures are noisy, ratios less so)' : ''}.`,
    '',
    markdownTable(run.results),
    '',
    ...(notes.length ? ['Notes from this run:', '', ...notes, ''] : []),
    `Raw figures: \`bench/results/${path.basename(resultsFile(run))}\`.`,
    SECTION_END,
  ].join('\n');
}

function resultsFile(run: BenchRun): string {
  return path.join(PROJECT_ROOT, 'bench', 'results', `${run.startedAt.slice(0, 19).replace(/:/g, '-')}${run.smoke ? '-smoke' : ''}.json`);
}

/** Writes bench/results/<date>.json and replaces the generated section of BENCHMARKS.md. */
export function saveRun(run: BenchRun): string {
  const file = resultsFile(run);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(run, null, 2) + '\n');
  const doc = path.join(PROJECT_ROOT, 'BENCHMARKS.md');
  const current = readFileSync(doc, 'utf8');
  const start = current.indexOf(SECTION_START);
  const end = current.indexOf(SECTION_END);
  const section = resultsSection(run);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + section + current.slice(end + SECTION_END.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(doc, next);
  return file;
}

async function main(): Promise<void> {
  // Killed from outside, the runner's own processes die with it (tiedToParent); when only npm or its shell
  // is killed, the runner notices it is orphaned and ends the same way instead of running on unwatched.
  whenOrphaned(() => {
    console.error('[bench] the command that started this run is gone; stopping (every benchmark process stops with it)');
    process.exit(130);
  });
  const program = new Command()
    .name('npm run bench --')
    .description('Runs the asset-farm benchmarks on this machine, starting everything they need.')
    .option('--smoke', 'small counts and short runs, to check the harness works (figures mean nothing)', false)
    .addOption(new Option('--repeats <n>', 'repeats of each measurement (default 3, smoke 1)').argParser((v) => Number.parseInt(v, 10)))
    .option(
      '--only <names>',
      `comma-separated subset of: ${Object.keys(BENCHMARKS).join(', ')} (default ${DEFAULT_BENCHMARKS.join(',')}; overhead, cancel and compute are benchmarks 4, 5 and 7 of pipeline alone)`,
    )
    .option('--jobs <list>', 'progress loads in concurrent jobs, e.g. 100,1000 (default 1,100,1000)')
    .option('--sockets <list>', 'fan-out sizes, e.g. 1000 (default 1000,10000)')
    .option('--triangles <list>', 'compute benchmark mesh sizes, e.g. 1000000,2000000 (default 1000000,5000000)')
    .option('--texture-size <n>', 'compute benchmark texture side in pixels (default 4096)')
    .option('--no-save', 'print only; do not write bench/results or BENCHMARKS.md')
    .parse();
  const opts = program.opts<{
    smoke: boolean;
    repeats?: number;
    only?: string;
    jobs?: string;
    sockets?: string;
    triangles?: string;
    textureSize?: string;
    save: boolean;
  }>();
  const list = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    const numbers = value.split(',').map((v) => Number.parseInt(v, 10));
    if (numbers.some((n) => !Number.isInteger(n) || n < 1)) program.error(`--${name} takes positive integers separated by commas.`);
    return numbers;
  };
  const textureSize = list(opts.textureSize, 'texture-size')?.[0];
  const scales = {
    jobs: list(opts.jobs, 'jobs'),
    sockets: list(opts.sockets, 'sockets'),
    triangles: list(opts.triangles, 'triangles'),
    ...(textureSize ? { textureSize } : {}),
  };
  const only = opts.only ? opts.only.split(',').map((s) => s.trim()) : DEFAULT_BENCHMARKS;
  const unknown = only.filter((n) => !(n in BENCHMARKS));
  if (unknown.length) program.error(`Unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHMARKS).join(', ')}.`);
  const repeats = opts.repeats ?? (opts.smoke ? 1 : 3);
  if (!Number.isInteger(repeats) || repeats < 1) program.error('--repeats must be a positive integer.');
  const run = await runBenchmarks({ smoke: opts.smoke, repeats, only, scales });
  console.log(markdownTable(run.results));
  if (opts.save) console.error(`[bench] wrote ${path.relative(PROJECT_ROOT, saveRun(run))} and BENCHMARKS.md`);
  process.exit(run.results.some((r) => r.status === 'failed') ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
