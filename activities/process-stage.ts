import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { TOOLS_DIR } from '../common/config.js';
import { FAILURES } from '../common/failures.js';
import { type ProcessSpec, type ProcessStageResult, type StageDescriptor, templatePlaceholders } from '../common/stages.js';
import { removeTempFiles } from './asset-io.js';
import type { StageJob } from './stage-job.js';
import type { StageModule } from './stage-module.js';
import type { StageThreadEvents } from './stage-thread.js';
import { outputBaseName } from './stages/package.js';
import { ExternalToolCancelled, ExternalToolError, runExternalTool } from './tools/external-tool.js';
import { parserFor } from './tools/progress-parsers.js';
import { workFiles } from './work-files.js';

/**
 * After SIGTERM, how long a process stage's program may take to exit before its process group is
 * SIGKILLed: a cancel leaves no process behind within 2 s.
 */
export const PROCESS_KILL_GRACE_MS = 1000;
/** Lines of standard error a failure carries. */
const STDERR_LINES = 12;

/** The values of a process stage's template placeholders for one job (common/stages.ts TEMPLATE_PLACEHOLDERS). */
function templateValues(job: StageJob): (name: string) => string | undefined {
  const base = outputBaseName(job.assetName);
  const fixed: Record<string, string> = {
    upload: path.join(job.inputDir, job.mainFile),
    optimized: workFiles.optimized(job.workDir),
    lod0: path.join(job.outputDir, `${base}-lod0.glb`),
    inputDir: job.inputDir,
    workDir: job.workDir,
    outputDir: job.outputDir,
    base,
    assetName: job.assetName,
    jobId: job.jobId,
    node: process.execPath,
    toolsDir: TOOLS_DIR,
  };
  return (name) => {
    if (name in fixed) return fixed[name];
    if (name.startsWith('settings.')) {
      const value = (job.settings as Record<string, unknown>)[name.slice('settings.'.length)];
      return value === undefined ? undefined : Array.isArray(value) ? value.join(',') : String(value);
    }
    if (name.startsWith('env.')) return process.env[name.slice('env.'.length)] || undefined;
    return undefined;
  };
}

/** Fills a template's placeholders; one that has no value here fails the stage as the farm's setup fault. */
export function expandTemplate(template: string, job: StageJob, stage: string): string {
  const values = templateValues(job);
  for (const name of templatePlaceholders(template)) {
    if (values(name) === undefined) {
      throw ApplicationFailure.nonRetryable(
        `${stage}: {${name}} in "${template}" has no value on this worker${name.startsWith('env.') ? ` (set ${name.slice(4)} in its environment)` : ''}`,
        FAILURES.STAGE_TOOL_MISSING.code,
      );
    }
  }
  return template.replace(/\{([^{}]*)\}/g, (_, name: string) => values(name)!);
}

/** The end of what the program wrote to standard error, for a failure message. */
function stderrOf(err: ExternalToolError): string {
  const lines = (err.stderrTail.length ? err.stderrTail : err.tail).slice(-STDERR_LINES);
  return lines.length ? `\nLast lines of its ${err.stderrTail.length ? 'error output' : 'output'}:\n${lines.join('\n')}` : '';
}

/**
 * A program's failure as Temporal should treat it: an exit code the stage declares as bad input is not
 * retried (INVALID_ASSET); a program that could not be started is a setup fault (STAGE_TOOL_MISSING); any
 * other failure (a crash, a kill, an unexpected code) is retried (STAGE_PROCESS_FAILED). Each carries the
 * last lines of the program's standard error.
 */
export function classifyProcessFailure(
  err: ExternalToolError,
  descriptor: StageDescriptor,
  spec: ProcessSpec,
  job: StageJob,
): ApplicationFailure {
  const name = path.basename(err.command);
  if (err.exitCode === null) {
    return ApplicationFailure.nonRetryable(`${descriptor.name}: ${err.message}`, FAILURES.STAGE_TOOL_MISSING.code);
  }
  if (spec.invalidInputExitCodes.includes(err.exitCode)) {
    const message = `${descriptor.label} ${job.assetName}: ${name} cannot process this input (exit code ${err.exitCode}).${stderrOf(err)}`;
    return ApplicationFailure.nonRetryable(message, FAILURES.INVALID_ASSET.code, {
      code: 'STAGE_PROCESS_INVALID_INPUT',
      message: `${name} exited with code ${err.exitCode}`,
      severity: 'error',
    });
  }
  return ApplicationFailure.retryable(
    `${descriptor.label} ${job.assetName}: ${name} ${err.exitCode === null ? 'failed' : `exited with code ${err.exitCode}`}.${stderrOf(err)}`,
    FAILURES.STAGE_PROCESS_FAILED.code,
  );
}

/**
 * Runs a process stage's program for one job: the command and arguments from their templates (no shell),
 * progress from its output lines through the stage's parser, its process group killed on `signal`
 * (SIGTERM, then SIGKILL after PROCESS_KILL_GRACE_MS), and the files it must write checked once it exits 0.
 */
export async function runProcessStage(
  descriptor: StageDescriptor,
  spec: ProcessSpec,
  job: StageJob,
  events: StageThreadEvents,
  signal: AbortSignal,
): Promise<ProcessStageResult> {
  const command = expandTemplate(spec.command, job, descriptor.name);
  const args = spec.args.map((arg) => expandTemplate(arg, job, descriptor.name));
  const env = Object.fromEntries(Object.entries(spec.env ?? {}).map(([key, value]) => [key, expandTemplate(value, job, descriptor.name)]));
  const parser = parserFor(spec.progress);
  const started = performance.now();
  let total = 0;
  events.onStart(1, 'steps', `Running ${path.basename(command)}`);
  try {
    await runExternalTool({
      command,
      args,
      cwd: job.workDir,
      env: { ...process.env, ...env },
      parser,
      killGraceMs: PROCESS_KILL_GRACE_MS,
      signal,
      onProgress: (p) => {
        if (p.total !== total) {
          total = p.total;
          events.onStart(total, 'steps', p.message);
        }
        events.onProgress(p.done, p.message, undefined);
      },
    });
  } catch (err) {
    if (err instanceof ExternalToolCancelled) throw signal.reason ?? err;
    if (err instanceof ExternalToolError) throw classifyProcessFailure(err, descriptor, spec, job);
    throw err;
  }
  const outputs = [];
  for (const file of spec.outputs.map((o) => expandTemplate(o, job, descriptor.name))) {
    const stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile()) {
      throw ApplicationFailure.retryable(
        `${descriptor.label} ${job.assetName}: ${path.basename(command)} exited 0 but did not write ${path.basename(file)}`,
        FAILURES.STAGE_PROCESS_FAILED.code,
      );
    }
    outputs.push({
      name: path.relative(job.outputDir, file).startsWith('..') ? path.basename(file) : path.relative(job.outputDir, file),
      bytes: stat.size,
    });
  }
  return { exitCode: 0, ms: Math.round(performance.now() - started), outputs };
}

/** A process stage's counterpart of a stage module: a cancelled run removes the files it was to write. */
export function processStageModule(descriptor: StageDescriptor, spec: ProcessSpec): Pick<StageModule, 'discard' | 'afterRun'> {
  return {
    discard: async (job) => {
      await Promise.all(spec.outputs.map((o) => fs.rm(expandTemplate(o, job, descriptor.name), { force: true })));
      await removeTempFiles(job.workDir);
    },
  };
}
