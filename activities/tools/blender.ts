import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { TOOLS_DIR } from '../../common/config.js';
import { FAILURES } from '../../common/failures.js';
import { isExecutable, whichSync } from '../../common/process-tie.js';
import { ExternalToolError, type OutputParser, runExternalTool, type ToolProgress, type ToolResult } from './external-tool.js';

/** The PyPI `bpy` release the farm provisions (Blender as a Python module), and the CPython it is built for. */
export const BPY_VERSION = '5.0.1';
export const BPY_PYTHON = '3.11';

/** The folder of the Python scripts the farm runs in Blender (activities/blender/). */
export const BLENDER_SCRIPTS_DIR = fileURLToPath(new URL('../blender/', import.meta.url));

/** Where `bpy` lives: `<tools folder>/bpy`, a link to the user-level cache, so CI and clones share one 1 GB install. */
export const BPY_TOOLS_DIR = path.join(TOOLS_DIR, 'bpy');
export function bpyCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'asset-farm', `bpy-${BPY_VERSION}-cp${BPY_PYTHON.replace('.', '')}`);
}

/** How this machine runs Blender: a studio's own executable, or CPython with the `bpy` module. Plain data (crosses into stage threads). */
export const BlenderRuntime = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('blender'), executable: z.string(), describe: z.string() }),
  z.object({ kind: z.literal('bpy'), python: z.string(), modulePath: z.string(), describe: z.string() }),
]);
export type BlenderRuntime = z.infer<typeof BlenderRuntime>;

/** How a turntable is rendered: HPC machine configuration (PREVIEW_* variables), not a job setting. */
export const TurntableConfig = z.object({
  frames: z.number().int().min(1).max(120),
  /** Width and height in pixels. */
  size: z.number().int().min(16).max(2048),
  /** Cycles samples a pixel. */
  samples: z.number().int().min(1).max(4096),
  /** Cycles stops refining a frame after this long, whatever its samples: the render's time is bounded. */
  secondsPerFrame: z.number().positive().max(600),
  /** CPU threads Cycles uses. */
  threads: z.number().int().min(1).max(256),
});
export type TurntableConfig = z.infer<typeof TurntableConfig>;

/** The defaults: a 16-frame 256² turntable, 8 samples, at most 20 s a frame. */
export const DEFAULT_TURNTABLE: TurntableConfig = { frames: 16, size: 256, samples: 8, secondsPerFrame: 20, threads: 2 };

/** True when `dir` holds an installed `bpy` package (a compiled module: bpy/__init__.so, plus its dist-info). */
export function hasBpy(dir: string): boolean {
  return existsSync(path.join(dir, 'bpy', '__init__.so')) && existsSync(path.join(dir, `bpy-${BPY_VERSION}.dist-info`));
}

/** The CPython `bpy` needs: BLENDER_PYTHON, else python3.11 on PATH or in /usr/bin. */
export function bpyPython(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.BLENDER_PYTHON) return isExecutable(env.BLENDER_PYTHON) ? env.BLENDER_PYTHON : null;
  const name = `python${BPY_PYTHON}`;
  return whichSync(name) ?? (isExecutable(`/usr/bin/${name}`) ? `/usr/bin/${name}` : null);
}

/**
 * The Blender this machine has, without installing anything (scripts/provision.ts installs): BLENDER_PATH,
 * else `bpy` in the tools folder or the user-level cache run by python3.11. Null when there is none.
 */
export function findBlender(env: NodeJS.ProcessEnv = process.env): BlenderRuntime | null {
  if (env.BLENDER_PATH) {
    if (!isExecutable(env.BLENDER_PATH))
      throw new Error(`BLENDER_PATH=${env.BLENDER_PATH} is not an executable file; fix the path or unset it.`);
    return { kind: 'blender', executable: env.BLENDER_PATH, describe: `Blender from BLENDER_PATH (${env.BLENDER_PATH})` };
  }
  const python = bpyPython(env);
  if (!python) return null;
  for (const [dir, where] of [
    [BPY_TOOLS_DIR, 'the project tools folder'],
    [bpyCacheDir(env), 'the user-level cache'],
  ] as const) {
    if (hasBpy(dir))
      return {
        kind: 'bpy',
        python,
        modulePath: dir,
        describe: `Blender ${BPY_VERSION} as the bpy module from ${where} (${dir}), run by ${python}`,
      };
  }
  return null;
}

/** Blender is needed (an FBX/OBJ/.blend upload, a turntable) and this HPC machine has none. */
export class BlenderUnavailableError extends Error {
  readonly code = FAILURES.BLENDER_UNAVAILABLE.code;
  constructor(what: string) {
    super(
      `${what} needs Blender, and this processing machine has none. Upload the model as .glb or .gltf, or ask an engineer to set BLENDER_PATH or run \`npm run provision\` on the HPC machines (RUNBOOK.md, "Blender").`,
    );
    this.name = 'BlenderUnavailableError';
  }
}

/** Blender read the input and said it can never work (the script's ASSET_FARM_FAILED line and exit 3). */
export class BlenderInputError extends Error {
  readonly code = FAILURES.MODEL_UNREADABLE.code;
  constructor(
    /** The script's own reason word: UNREADABLE_MODEL, NO_GEOMETRY, UNSUPPORTED_FORMAT. */
    readonly reason: string,
    message: string,
    readonly tail: string[],
  ) {
    super(message);
    this.name = 'BlenderInputError';
  }
}

/** Exit status of a script given an input it cannot use (activities/blender/farm_blender.py EXIT_BAD_INPUT). */
const EXIT_BAD_INPUT = 3;
const PROGRESS_LINE = /^ASSET_FARM_PROGRESS (\d+)\/(\d+) (.*)$/;
const FAILED_LINE = /^ASSET_FARM_FAILED ([A-Z_]+) (.*)$/;

/** The farm's scripts print `ASSET_FARM_PROGRESS done/total message` (farm_blender.py); Blender's own lines say nothing. */
export const blenderProgressParser: OutputParser = (line, stream) => {
  if (stream !== 'stdout') return null;
  const m = PROGRESS_LINE.exec(line);
  return m ? { done: Number(m[1]), total: Math.max(1, Number(m[2])), message: m[3]! } : null;
};

/** The command line that runs `script` with `args` under the runtime, and the environment it needs. */
export function blenderCommand(
  runtime: BlenderRuntime,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const scriptPath = path.isAbsolute(script) ? script : path.join(BLENDER_SCRIPTS_DIR, script);
  // No __pycache__ written into the repository, no user site-packages shadowing the provisioned modules.
  const pythonEnv = { PYTHONDONTWRITEBYTECODE: '1', PYTHONNOUSERSITE: '1' };
  if (runtime.kind === 'blender') {
    return {
      command: runtime.executable,
      // --disable-autoexec: a .blend from outside must never run the Python it may carry.
      args: ['--background', '--factory-startup', '--disable-autoexec', '--python-exit-code', '1', '--python', scriptPath, '--', ...args],
      env: { ...env, ...pythonEnv },
    };
  }
  return {
    command: runtime.python,
    args: [scriptPath, '--', ...args],
    env: { ...env, ...pythonEnv, PYTHONPATH: [runtime.modulePath, env.PYTHONPATH].filter(Boolean).join(path.delimiter) },
  };
}

export interface BlenderRunOptions {
  /** A file in activities/blender/, or an absolute path (a studio's own script). */
  script: string;
  args: string[];
  signal?: AbortSignal;
  onProgress?: (progress: ToolProgress) => void;
  /** Told Blender's process id while it runs (true) and when it has exited (false). */
  onProcess?: (pid: number, running: boolean) => void;
}

/**
 * Runs a Blender Python script headless as a process tied to the calling thread (common/process-tie.ts), in
 * its own process group killed on abort (SIGTERM, SIGKILL a second later), with progress parsed from its
 * output. A script that rejects its input fails with BlenderInputError (never retried); any other failure
 * is an ExternalToolError with the last lines of output.
 */
export async function runBlenderScript(runtime: BlenderRuntime, options: BlenderRunOptions): Promise<ToolResult> {
  const { command, args, env } = blenderCommand(runtime, options.script, options.args);
  let refusal: { reason: string; message: string } | null = null;
  try {
    return await runExternalTool({
      command,
      args,
      env,
      parser: blenderProgressParser,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      onLine: (line, stream) => {
        const m = stream === 'stdout' ? FAILED_LINE.exec(line) : null;
        if (m) refusal = { reason: m[1]!, message: m[2]! };
      },
      onSpawn: (pid) => options.onProcess?.(pid, true),
      onExit: (pid) => options.onProcess?.(pid, false),
      ...(options.signal ? { signal: options.signal } : {}),
      // Cycles checks for SIGTERM between tiles; a second is enough, and a cancel must end within 2 s.
      killGraceMs: 1000,
    });
  } catch (err) {
    const said = refusal as { reason: string; message: string } | null;
    if (err instanceof ExternalToolError && err.exitCode === EXIT_BAD_INPUT && said) {
      throw new BlenderInputError(said.reason, said.message, err.tail);
    }
    throw err;
  }
}
