import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import { SHARED_ASSETS } from '../../test/helpers/upload.js';
import { ExternalToolCancelled, ExternalToolError, runExternalTool, type ToolProgress } from './external-tool.js';
import { gltfpackParser } from './gltfpack-parser.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A tool that starts a grandchild, reports its pid and progress, then works forever. */
const FOREVER_TOOL = `
const { spawn } = require('node:child_process');
const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
console.log('grandchild ' + grandchild.pid);
let i = 0;
setInterval(() => console.log('step ' + (++i) + '/100'), 20);
`;
const stepParser = (line: string): ToolProgress | null => {
  const m = /^step (\d+)\/(\d+)$/.exec(line);
  return m ? { done: Number(m[1]), total: Number(m[2]), message: line } : null;
};

describe('runExternalTool', () => {
  it('streams output through the parser as progress', async () => {
    const seen: ToolProgress[] = [];
    const result = await runExternalTool({
      command: process.execPath,
      args: ['-e', 'for (let i = 1; i <= 3; i++) console.log(`step ${i}/3`); console.error("done")'],
      parser: stepParser,
      onProgress: (p) => seen.push(p),
    });
    expect(result.exitCode).toBe(0);
    expect(seen.map((p) => p.done)).toEqual([1, 2, 3]);
    expect(result.tail).toContain('done');
  });

  it('kills the whole process tree when cancelled', async () => {
    const controller = new AbortController();
    const lines: string[] = [];
    const run = runExternalTool({
      command: process.execPath,
      args: ['-e', FOREVER_TOOL],
      signal: controller.signal,
      onLine: (l) => lines.push(l),
      parser: stepParser,
    });
    const grandchildPid = await waitFor(
      () => {
        const line = lines.find((l) => l.startsWith('grandchild '));
        return line ? Number(line.split(' ')[1]) : undefined;
      },
      { timeoutMs: 10_000, what: 'the tool to start its grandchild' },
    );
    await waitFor(() => lines.some((l) => l.startsWith('step ')), { timeoutMs: 10_000, what: 'progress' });
    expect(alive(grandchildPid)).toBe(true);
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(ExternalToolCancelled);
    await waitFor(() => !alive(grandchildPid), { timeoutMs: 5_000, what: 'the grandchild to be killed' });
  });

  it('reports a failing tool with its exit code and last lines', async () => {
    const run = runExternalTool({ command: process.execPath, args: ['-e', 'console.error("bad input file"); process.exit(3)'] });
    await expect(run).rejects.toBeInstanceOf(ExternalToolError);
    await expect(run).rejects.toThrow(/exited with code 3; last output:\nbad input file/);
  });

  it('says so when the program is not installed', async () => {
    await expect(runExternalTool({ command: 'no-such-tool-asset-farm', args: [] })).rejects.toThrow(/could not be started .*installed/);
  });

  it('runs the real gltfpack on DamagedHelmet with parsed progress', async () => {
    const cli = createRequire(import.meta.url).resolve('gltfpack/cli.js');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gltfpack-'));
    try {
      const seen: ToolProgress[] = [];
      const out = path.join(dir, 'out.glb');
      await runExternalTool({
        command: process.execPath,
        args: [cli, '-v', '-cc', '-i', path.join(SHARED_ASSETS, 'DamagedHelmet.glb'), '-o', out],
        parser: gltfpackParser,
        onProgress: (p) => seen.push(p),
      });
      expect(seen[0]?.message).toMatch(/^Read: 1 nodes, 1 meshes/);
      expect(seen.at(-1)).toMatchObject({ done: 3, total: 3 });
      expect(statSync(out).size).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
