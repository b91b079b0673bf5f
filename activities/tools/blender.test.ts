import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { processAlive, processGroupAlive, provisionedBlender } from '../../test/helpers/blender.js';
import { SHARED_ASSETS } from '../../test/helpers/upload.js';
import { BlenderInputError, type BlenderRuntime, blenderCommand, blenderProgressParser, findBlender, runBlenderScript } from './blender.js';
import { ExternalToolCancelled, type ToolProgress } from './external-tool.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'blender-runner-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const FBX = path.join(SHARED_ASSETS, 'DamagedHelmet.fbx');
const SEED = 19;

describe('runBlenderScript', () => {
  it('imports an FBX into a GLB, reporting each step as progress', async () => {
    const seen: ToolProgress[] = [];
    const output = path.join(work, 'helmet.glb');
    await runBlenderScript(provisionedBlender(), { script: 'import-to-gltf.py', args: [FBX, output], onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => `${p.done}/${p.total}`)).toEqual(['1/4', '2/4', '3/4', '4/4']);
    expect(seen[1]!.message).toMatch(/1 mesh, 15,452 faces/);
    expect(readFileSync(output).subarray(0, 4).toString('latin1')).toBe('glTF');
  });

  it('refuses FBX files Blender cannot read, in variety, with a reason and never as the farm’s fault', async () => {
    const original = readFileSync(FBX);
    // Cut short at any point, bytes flipped inside, or no FBX at all: each is the file's fault.
    const damage = fc.oneof(
      fc.integer({ min: 0, max: original.length - 1 }).map((at) => ({ what: `cut at ${at}`, bytes: original.subarray(0, at) })),
      fc
        .uint8Array({ minLength: 1, maxLength: 4096 })
        .map((noise) => ({ what: `${noise.length} random bytes`, bytes: Buffer.from(noise) })),
      fc.integer({ min: 0, max: 22 }).map((at) => {
        const copy = Buffer.from(original);
        copy.fill(0x41, at, at + 4);
        return { what: `header damaged at ${at}`, bytes: copy };
      }),
    );
    const cases = fc.sample(damage, { seed: SEED, numRuns: 4 });
    for (const [i, { what, bytes }] of cases.entries()) {
      const input = path.join(work, `broken-${i}.fbx`);
      writeFileSync(input, bytes);
      const run = runBlenderScript(provisionedBlender(), {
        script: 'import-to-gltf.py',
        args: [input, path.join(work, `broken-${i}.glb`)],
      });
      const err = await run.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, what).toBeInstanceOf(BlenderInputError);
      expect((err as BlenderInputError).reason, what).toMatch(/^(UNREADABLE_MODEL|NO_GEOMETRY)$/);
      expect((err as BlenderInputError).message, what).toContain(`broken-${i}.fbx`);
    }
  });

  it('kills Blender’s whole process group within 2 s when cancelled during a render', async () => {
    const controller = new AbortController();
    const frames = path.join(work, 'frames');
    let pid: number | undefined;
    let exited = false;
    const seen: ToolProgress[] = [];
    // Far more work than the test waits for: the render is still running when the cancel comes.
    const run = runBlenderScript(provisionedBlender(), {
      script: 'render-turntable.py',
      args: [path.join(SHARED_ASSETS, 'DamagedHelmet.glb'), frames, '24', '128', '64', '30', '1'],
      signal: controller.signal,
      onProgress: (p) => seen.push(p),
      onProcess: (p, running) => {
        pid = p;
        exited = !running;
      },
    });
    await waitFor(() => seen.some((p) => p.done >= 1), { timeoutMs: 60_000, what: 'Blender to start rendering' });
    expect(pid).toBeDefined();
    expect(processAlive(pid!)).toBe(true);
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(ExternalToolCancelled);
    expect(exited).toBe(true);
    await waitFor(() => !processGroupAlive(pid!), { timeoutMs: 2_000, what: 'Blender’s process group to be gone' });
    // It never reached its last frame.
    expect(seen.at(-1)!.done).toBeLessThan(seen.at(-1)!.total);
  });
});

/** A stand-in `blender` executable over the bpy module: checks Blender's flags, runs the script after --python. */
function standIn(bpy: Extract<BlenderRuntime, { kind: 'bpy' }>): string {
  const fake = path.join(work, 'blender');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      'for flag in --background --factory-startup --disable-autoexec; do',
      '  case " $* " in *" $flag "*) ;; *) echo "missing $flag" >&2; exit 64;; esac',
      'done',
      'while [ "$1" != "--python" ]; do shift; done',
      'script="$2"; shift 2; [ "$1" = "--" ] || exit 64',
      `PYTHONPATH="${bpy.modulePath}" exec "${bpy.python}" "$script" "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return fake;
}

describe('a studio’s own Blender (BLENDER_PATH)', () => {
  it('runs the farm’s scripts through Blender’s command line and reads their progress and refusals', async () => {
    const provisioned = provisionedBlender();
    // A machine provisioned with BLENDER_PATH tests its own Blender; otherwise a stand-in for the blender
    // executable insists on the headless, script-free flags and runs the --python script after `--` as
    // Blender would, with the provisioned bpy module.
    const studio = provisioned.kind === 'blender' ? provisioned : findBlender({ ...process.env, BLENDER_PATH: standIn(provisioned) });
    expect(studio).toMatchObject({ kind: 'blender' });
    const seen: ToolProgress[] = [];
    const output = path.join(work, 'studio.glb');
    await runBlenderScript(studio!, {
      script: 'import-to-gltf.py',
      args: [path.join(SHARED_ASSETS, 'BoxTextured.blend'), output],
      onProgress: (p) => seen.push(p),
    });
    expect(seen.map((p) => p.done)).toEqual([1, 2, 3, 4]);
    expect(statSync(output).size).toBeGreaterThan(20_000);
    const broken = path.join(work, 'broken.blend');
    writeFileSync(broken, 'BLENDER-not-really');
    await expect(runBlenderScript(studio!, { script: 'import-to-gltf.py', args: [broken, output] })).rejects.toBeInstanceOf(
      BlenderInputError,
    );
  });

  it('refuses a BLENDER_PATH that is not an executable, naming it', () => {
    expect(() => findBlender({ BLENDER_PATH: path.join(work, 'no-blender') })).toThrow(/BLENDER_PATH=.*no-blender is not an executable/);
  });
});

describe('blenderCommand', () => {
  it('runs a studio’s Blender headless, without the scene’s scripts, with the script’s arguments after --', () => {
    const { command, args } = blenderCommand({ kind: 'blender', executable: '/opt/blender/blender', describe: '' }, 'import-to-gltf.py', [
      'a.fbx',
      'b.glb',
    ]);
    expect(command).toBe('/opt/blender/blender');
    expect(args.slice(0, 3)).toEqual(['--background', '--factory-startup', '--disable-autoexec']);
    expect(args.slice(-3)).toEqual(['--', 'a.fbx', 'b.glb']);
    expect(statSync(args[args.indexOf('--python') + 1]!).isFile()).toBe(true);
  });

  it('puts the bpy module first on PYTHONPATH for python3.11', () => {
    const { command, args, env } = blenderCommand(
      { kind: 'bpy', python: '/usr/bin/python3.11', modulePath: '/cache/bpy', describe: '' },
      'render-turntable.py',
      ['x'],
      { PYTHONPATH: '/elsewhere' },
    );
    expect(command).toBe('/usr/bin/python3.11');
    expect(args.slice(1)).toEqual(['--', 'x']);
    expect(env.PYTHONPATH).toBe(`/cache/bpy${path.delimiter}/elsewhere`);
  });

  it('reads progress only from the scripts’ own lines', () => {
    expect(blenderProgressParser('ASSET_FARM_PROGRESS 3/17 Rendered frame 2 of 16', 'stdout')).toEqual({
      done: 3,
      total: 17,
      message: 'Rendered frame 2 of 16',
    });
    expect(blenderProgressParser('Fra:1 Mem:12M | Sample 3/8', 'stdout')).toBeNull();
    expect(blenderProgressParser('ASSET_FARM_PROGRESS 3/17 spoofed', 'stderr')).toBeNull();
  });
});
