import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../../scripts/lib/wait.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import { jsonLines, runCli, startCli, type CliRun } from './run-cli.js';
import { NetworkFault } from '../helpers/network-fault.js';
import { storedBlobs } from '../helpers/tus.js';

const TWO_CUBES = path.join(SHARED_ASSETS, 'TwoCubes.glb');
const HELMET = path.join(SHARED_ASSETS, 'DamagedHelmet.glb');
const BOX_OBJ = ['BoxTextured.obj', 'BoxTextured.mtl', 'CesiumLogoFlat.png'].map((f) => path.join(SHARED_ASSETS, 'BoxTexturedOBJ', f));
const BOX_TEXTURED = ['BoxTextured.gltf', 'BoxTextured0.bin', 'CesiumLogoFlat.png'].map((f) => path.join(SHARED_ASSETS, 'BoxTextured', f));

/** The job's REST view, polled until its status is one of `statuses`. */
async function jobStatus(stack: TestStack, token: string, jobId: string, statuses: string[]): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const res = await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as Record<string, unknown>;
      return statuses.includes(String(body.status)) && body;
    },
    { timeoutMs: 60_000, what: `${jobId} to be ${statuses.join(' or ')}` },
  );
}

/** Runs several CLI commands side by side (they are independent), pairing each with its arguments. */
async function runAll(env: Record<string, string>, commands: string[][]): Promise<[string[], CliRun][]> {
  return Promise.all(commands.map(async (args) => [args, await runCli(args, env)] as [string[], CliRun]));
}

describe('asset-farm CLI against the real stack', () => {
  let stack: TestStack;
  let configDir: string;
  /** Environment of a CLI run signed in as alice through `login` (the config file, no token variable). */
  let alice: Record<string, string>;

  beforeAll(async () => {
    // The HPC worker starts later (second block), so jobs submitted first wait at their first compute step.
    stack = await startStack({ components: ['worker:orchestrator', 'api'] });
    configDir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-cli-'));
    alice = { ASSET_FARM_CONFIG: path.join(configDir, 'alice', 'config.json') };
  });
  afterAll(async () => {
    await stack?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  describe('while no HPC worker polls (a job stays running, so cancel is deterministic)', () => {
    it('login stores the API and a working token in a config file only the user can read', async () => {
      const run = await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Signed in to ${stack.apiUrl} as alice`);
      const file = alice.ASSET_FARM_CONFIG!;
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { api: string; token: string; user: string };
      expect(saved).toMatchObject({ api: stack.apiUrl, user: 'alice' });
      expect(jwt.verify(saved.token, stack.secret)).toMatchObject({ sub: 'alice' });
    });

    it('cancel stops a running job; watch --json resumes across an API restart and exits 1 with the cancelled event; logs shows it', async () => {
      await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      const submitted = await runCli(['submit', HELMET, '--preset', 'mobile', '--json'], alice);
      expect(submitted.code).toBe(0);
      const { jobId } = JSON.parse(submitted.stdout) as { jobId: string };
      expect(jobId).toMatch(/^asset-alice-/);

      const watch = startCli(['watch', jobId, '--json'], alice);
      const stopped = startCli(['watch', jobId, '--json'], alice);
      await watch.waitForLine((l) => l.includes('"type":"snapshot"'), 'the snapshot line');
      // Ctrl-C stops watching, not the job.
      await stopped.waitForLine((l) => l.includes('"type":"snapshot"'), 'the snapshot line');
      stopped.child.kill('SIGINT');
      const interrupted = await stopped.exited;
      expect(interrupted.code).toBe(130);
      expect(interrupted.stderr).toContain('Stopped watching; the job goes on');

      // The API restarts under the watcher (its sockets close with 1012): it reconnects and resumes with lastSeq.
      await stack.startComponent('api');
      const cancel = await runCli(['cancel', jobId], alice);
      expect(cancel.code).toBe(0);
      expect(cancel.stdout).toContain(`${jobId} cancelling`);
      // Cancelling runs the job's cleanup on the HPC machine, so it completes once an HPC worker polls.
      await stack.startComponent('worker:hpc');

      const watched = await watch.exited;
      expect(watched.stderr).toBe('');
      expect(watched.code).toBe(1);
      const messages = jsonLines(watched.stdout);
      expect(messages[0]).toMatchObject({ type: 'snapshot', jobId });
      expect(messages.at(-1)).toMatchObject({ type: 'event', event: 'cancelled', jobId, owner: 'alice' });
      // Queue frames (the job's place in the HPC line) are current state and carry no seq.
      const seqs = messages.filter((m) => m.type !== 'queue').map((m) => m.seq as number);
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));

      // Once closed, cancelling again is refused (exit 1), and watching again ends at once with the same outcome.
      await jobStatus(stack, stack.tokenFor('alice'), jobId, ['CANCELLED']);
      // Back to no HPC worker, so the next job here stays running too.
      await stack.processes.get('worker:hpc')?.stop();
      const again = await runCli(['cancel', jobId], alice);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('already cancelled');
      const rewatch = await runCli(['watch', jobId], alice);
      expect(rewatch.code).toBe(1);
      expect(rewatch.stdout).toContain(`${jobId} cancelled`);

      const logs = await runCli(['logs', jobId], alice);
      expect(logs.code).toBe(0);
      expect(logs.stdout).toMatch(/ActivityTaskScheduled {2}inspectAsset \[inspect\]/);
      expect(logs.stdout).toContain('WorkflowExecutionCancelRequested');
      expect(logs.stdout).toContain('WorkflowExecutionCanceled');
    });

    it('watch ends a job terminated from the Temporal UI, exit 1', async () => {
      const env = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: stack.tokenFor('grace') };
      const submitted = await runCli(['submit', TWO_CUBES], env);
      const jobId = submitted.stdout.trim();
      const watch = startCli(['watch', jobId, '--json'], env);
      await watch.waitForLine((l) => l.includes('"type":"snapshot"'), 'the snapshot line');
      const connection = await Connection.connect({ address: stack.temporalAddress });
      try {
        await new Client({ connection, namespace: stack.namespace }).workflow.getHandle(jobId).terminate('stopped by an engineer');
      } finally {
        await connection.close();
      }
      const watched = await watch.exited;
      expect(watched.stderr).toBe('');
      expect(watched.code).toBe(1);
      // The API reconciles the terminated status into an event on the socket; the CLI's status poll would
      // end the watch too if that event were lost.
      const last = jsonLines(watched.stdout).at(-1);
      expect(
        (last?.type === 'event' && last.event === 'terminated' && last.jobId === jobId) ||
          (last?.type === 'status' && last.outcome === 'terminated' && last.jobId === jobId),
      ).toBe(true);
      // The human view says the same.
      const rewatch = await runCli(['watch', jobId], env);
      expect(rewatch.code).toBe(1);
      // The stages the job got through come first; the outcome is the last line.
      expect(rewatch.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${jobId} terminated: `));
    });
  });

  describe('resumable uploads through a network that fails', () => {
    const helmet = readFileSync(HELMET);
    const helmetSha = createHash('sha256').update(helmet).digest('hex');
    let network: NetworkFault;
    beforeAll(async () => {
      network = await NetworkFault.start(stack.apiUrl);
    });
    afterAll(async () => {
      await network?.stop();
    });
    const signedIn = async (user: string) => {
      const env = { ASSET_FARM_CONFIG: path.join(configDir, user, 'config.json') };
      expect((await runCli(['login', '--api', network.url, '--user', user], env)).code).toBe(0);
      network.reset();
      return env;
    };
    const submittedFiles = (run: CliRun) => (JSON.parse(run.stdout) as { files: { sha256: string; size: number }[] }).files;

    it('submit goes on after the connection drops at 60 %, sending the rest only; a second submit of the same file sends no bytes', async () => {
      const carol = await signedIn('carol');
      network.arm('cut', Math.floor(helmet.length * 0.6));
      const run = await runCli(['submit', HELMET, '--json'], carol);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(network.faults).toBe(1);
      expect(submittedFiles(run)).toEqual([{ name: 'DamagedHelmet.glb', sha256: helmetSha, size: helmet.length }]);
      // Resumed, not restarted: starting again from byte 0 would have sent 1.6 times the file.
      expect(network.sent).toBeGreaterThan(helmet.length);
      expect(network.sent).toBeLessThan(helmet.length * 1.1);

      const blobs = storedBlobs(stack.dataDir).length;
      network.reset();
      const again = await runCli(['submit', HELMET, '--json'], carol);
      expect(again.code).toBe(0);
      expect(submittedFiles(again)[0]!.sha256).toBe(helmetSha);
      expect(network.sent).toBeLessThan(8 * 1024); // a hash check and the job start, no file bytes
      expect(storedBlobs(stack.dataDir).length).toBe(blobs);
    });

    it('a submit killed at 60 % goes on from there when run again', async () => {
      const dave = await signedIn('dave');
      const partials = path.join(stack.dataDir, 'uploads', 'resumable');
      network.arm('stall', Math.floor(helmet.length * 0.6));
      const first = startCli(['submit', HELMET, '--json'], dave);
      // The API holds 60 % of the file, then nothing more arrives.
      const held = await waitFor(
        () =>
          network.faults === 1 &&
          readdirSync(partials)
            .filter((f) => !f.endsWith('.json'))
            .map((f) => statSync(path.join(partials, f)).size)
            .find((size) => size >= helmet.length * 0.55),
        { timeoutMs: 60_000, what: 'the API to hold 60 % of the upload' },
      );
      first.child.kill('SIGKILL');
      await first.exited;
      // The CLI remembered the unfinished upload beside its config file.
      expect(readFileSync(path.join(configDir, 'dave', 'unfinished-uploads.json'), 'utf8')).toContain('/api/uploads/');

      network.reset();
      const second = await runCli(['submit', HELMET, '--json'], dave);
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(submittedFiles(second)[0]!.sha256).toBe(helmetSha);
      // Only the rest of the file went the second time.
      expect(network.sent).toBeLessThan(helmet.length - held + 16 * 1024);
      expect(readFileSync(path.join(configDir, 'dave', 'unfinished-uploads.json'), 'utf8')).not.toContain('/api/uploads/');
    });
  });

  describe('with the HPC worker', () => {
    beforeAll(async () => {
      await stack.startComponent('worker:hpc');
    });

    it('submit --watch follows TwoCubes.glb to completion in CI (no TTY) and exits 0', async () => {
      await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      const run = await runCli(['submit', TWO_CUBES, '--watch'], alice);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^asset-alice-\S+ submitted \(TwoCubes\.glb\)$/);
      expect(lines).toContain('inspect: done');
      const jobId = lines[0]!.split(' ')[0]!;
      expect(lines.at(-1)).toBe(`${jobId} completed: TwoCubes.glb is ready`);

      // Watching a finished job ends at once with its outcome.
      const rewatch = await runCli(['watch', jobId], alice);
      expect(rewatch.code).toBe(0);
      expect(rewatch.stdout.trim().split('\n').at(-1)).toBe(`${jobId} completed: TwoCubes.glb is ready`);
    });

    it('submits an OBJ with its MTL and texture: Blender imports it first, and the job completes', async () => {
      await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      const run = await runCli(['submit', ...BOX_OBJ, '--watch'], alice);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^asset-alice-\S+ submitted \(BoxTextured\.obj\)$/);
      // The job's own plan: the import before the glTF stages, the turntable after them.
      expect(lines.filter((l) => /^\w+: done$/.test(l))).toEqual(
        ['import', 'inspect', 'validate', 'optimize', 'lods', 'textures', 'package', 'preview'].map((s) => `${s}: done`),
      );
      expect(lines.at(-1)).toMatch(/completed: BoxTextured\.obj is ready$/);
    });

    it('submit of a folder with --watch starts one batch, prints each asset as it ends, and exits 1 when one failed', async () => {
      await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      const folder = path.join(configDir, 'props');
      mkdirSync(path.join(folder, 'boxes'), { recursive: true });
      copyFileSync(TWO_CUBES, path.join(folder, 'crate.glb'));
      for (const file of BOX_TEXTURED) copyFileSync(file, path.join(folder, 'boxes', path.basename(file)));
      writeFileSync(path.join(folder, 'broken.glb'), 'this is not a glTF file');
      const run = await runCli(['submit', folder, '--watch'], alice);
      expect(run.stderr).toBe('');
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^asset-alice-\S+ submitted \(batch props of 3 assets\)$/);
      // A line per asset as it ends (the .gltf went with its .bin and texture), counting up to 3.
      const assetLines = lines.filter((l) => / \(\d of 3 assets\)$/.test(l));
      expect(assetLines.map((l) => /\((\d) of 3/.exec(l)![1])).toEqual(['1', '2', '3']);
      expect(assetLines.filter((l) => l.startsWith('broken.glb failed'))).toHaveLength(1);
      expect(
        assetLines
          .filter((l) => / completed \(/.test(l))
          .map((l) => l.split(' ')[0])
          .sort(),
      ).toEqual(['BoxTextured.gltf', 'crate.glb']);
      expect(run.code).toBe(1);
    });

    it('--json gives scripts one document per submit and list, and NDJSON while watching', async () => {
      await runCli(['login', '--api', stack.apiUrl, '--user', 'alice'], alice);
      const run = await runCli(['submit', ...BOX_TEXTURED, '--max-texture-size', '512', '--watch', '--json'], alice);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const [submitted, ...messages] = jsonLines(run.stdout);
      expect(submitted).toMatchObject({ jobId: expect.stringMatching(/^asset-alice-/), assetName: 'BoxTextured.gltf' });
      expect((submitted!.files as { name: string }[]).map((f) => f.name).sort()).toEqual(
        ['BoxTextured.gltf', 'BoxTextured0.bin', 'CesiumLogoFlat.png'].sort(),
      );
      const jobId = submitted!.jobId as string;
      // A job just submitted is followed from its first message, so nothing it published is missed.
      expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
      for (const m of messages) expect(['progress', 'event']).toContain(m.type);
      expect(messages.some((m) => m.type === 'progress' && m.stage === 'inspect')).toBe(true);
      expect(messages.at(-1)).toMatchObject({ type: 'event', event: 'completed', jobId });

      await jobStatus(stack, stack.tokenFor('alice'), jobId, ['COMPLETED']);
      const list = await runCli(['list', '--json'], alice);
      expect(list.code).toBe(0);
      const jobs = JSON.parse(list.stdout) as Record<string, unknown>[];
      expect(jobs.find((j) => j.jobId === jobId)).toMatchObject({
        jobId,
        assetName: 'BoxTextured.gltf',
        preset: 'game-ready',
        status: 'COMPLETED',
        startTime: expect.any(String),
      });
      const completed = JSON.parse((await runCli(['list', '--state', 'completed', '--json'], alice)).stdout) as { status: string }[];
      expect(completed.length).toBeGreaterThanOrEqual(1);
      expect(completed.every((j) => j.status === 'COMPLETED')).toBe(true);
      const running = JSON.parse((await runCli(['list', '--state', 'running', '--json'], alice)).stdout) as { jobId: string }[];
      expect(running.map((j) => j.jobId)).not.toContain(jobId);

      const table = await runCli(['list'], alice);
      expect(table.stdout.split('\n')[0]).toMatch(/^JOB\s+STATUS\s+STAGE\s+PRIORITY\s+ASSET\s+STARTED$/);
      expect(table.stdout.split('\n').find((line) => line.startsWith(jobId))).toMatch(/\snormal\s/);
    });

    it('submit --priority urgent is refused for an artist the studio has not allowed, with the reason', async () => {
      const run = await runCli(['submit', TWO_CUBES, '--priority', 'urgent'], alice);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/Urgent jobs are reserved/);
      const bad = await runCli(['submit', TWO_CUBES, '--priority', 'asap'], alice);
      expect(bad.code).toBe(2);
    });

    it('submit --watch of an asset that cannot be read exits 1 with the reason; logs shows the failure', async () => {
      const broken = path.join(configDir, 'broken.glb');
      writeFileSync(broken, 'this is not a glTF file');
      const env = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: stack.tokenFor('frank') };
      const run = await runCli(['submit', broken, '--watch'], env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(1);
      const jobId = run.stdout.split(' ')[0]!;
      expect(run.stdout).toContain('inspect: FAILED');
      expect(run.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${jobId} failed: broken\\.glb is not a GLB file`));

      await jobStatus(stack, stack.tokenFor('frank'), jobId, ['FAILED']);
      const logs = await runCli(['logs', jobId], env);
      expect(logs.stdout).toMatch(/ActivityTaskFailed {2}inspectAsset \[inspect\] {2}- .*is not a GLB file/);
      expect(logs.stdout).toContain('WorkflowExecutionFailed');
      const failed = JSON.parse((await runCli(['list', '--state', 'failed', '--json'], env)).stdout) as { jobId: string }[];
      expect(failed.map((j) => j.jobId)).toEqual([jobId]);
    });

    it('logs shows what ran with its attempt, for the owner only', async () => {
      const token = stack.tokenFor('carol');
      const res = await uploadAsset(stack.apiUrl, token, [TWO_CUBES]);
      const { jobId } = (await res.json()) as { jobId: string };
      await jobStatus(stack, token, jobId, ['COMPLETED']);

      const carol = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: token };
      const logs = await runCli(['logs', jobId], carol);
      expect(logs.code).toBe(0);
      expect(logs.stdout).toMatch(/ActivityTaskStarted {2}inspectAsset \[inspect\] {2}attempt 1/);
      expect(logs.stdout).toMatch(/ActivityTaskCompleted {2}inspectAsset \[inspect\]/);
      expect(logs.stdout).toContain('WorkflowExecutionCompleted');
      expect(logs.stdout).not.toContain('WorkflowTaskScheduled');

      const json = JSON.parse((await runCli(['logs', jobId, '--json'], carol)).stdout) as {
        jobId: string;
        events: Record<string, unknown>[];
      };
      expect(json.jobId).toBe(jobId);
      expect(json.events[0]).toMatchObject({ id: 1, type: 'WorkflowExecutionStarted', time: expect.any(String) });
      expect(json.events).toContainEqual(
        expect.objectContaining({ type: 'ActivityTaskStarted', activityType: 'inspectAsset', stage: 'inspect', attempt: 1 }),
      );

      // Another user gets the same answer as for a job that does not exist: usage error, exit 2.
      const bob = await runCli(['logs', jobId], { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: stack.tokenFor('bob') });
      expect(bob.code).toBe(2);
      expect(bob.stderr).toContain('No such job');
      const bobWatch = await runCli(['watch', jobId], { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: stack.tokenFor('bob') });
      expect(bobWatch.code).toBe(2);
    });

    it('retry starts a new job for the same files and prints its id ', async () => {
      // A failed job is what artists retry; the same unreadable file fails again, which makes the outcome certain.
      const token = stack.tokenFor('dave');
      const broken = path.join(configDir, 'broken-again.glb');
      writeFileSync(broken, 'still not a glTF file');
      const res = await uploadAsset(stack.apiUrl, token, [broken]);
      const { jobId } = (await res.json()) as { jobId: string };
      await jobStatus(stack, token, jobId, ['FAILED']);

      const dave = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: token };
      const run = await runCli(['retry', jobId, '--watch'], dave);
      expect(run.stderr).toBe('');
      const newId = run.stdout.split('\n')[0]!;
      expect(newId).toMatch(/^asset-dave-/);
      expect(newId).not.toBe(jobId);
      expect(run.stdout).toContain(`${newId} failed: broken-again.glb is not a GLB file`);
      expect(run.code).toBe(1);
    });

    it('download saves every output and checks it against the listed sha256 ', async () => {
      const token = stack.tokenFor('erin');
      const res = await uploadAsset(stack.apiUrl, token, [TWO_CUBES]);
      const { jobId } = (await res.json()) as { jobId: string };
      await jobStatus(stack, token, jobId, ['COMPLETED']);

      const erin = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: token };
      const out = path.join(configDir, 'downloads');
      const run = await runCli(['download', jobId, '--out', out, '--json'], erin);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const saved = JSON.parse(run.stdout) as { files: { name: string; path: string; sha256: string }[] };
      expect(saved.files.length).toBeGreaterThanOrEqual(1);
      for (const file of saved.files) {
        expect(createHash('sha256').update(readFileSync(file.path)).digest('hex')).toBe(file.sha256);
      }
      const zip = await runCli(['download', jobId, '--out', out, '--zip'], erin);
      expect(zip.code).toBe(0);
      expect(
        readFileSync(path.join(out, `${jobId}.zip`))
          .subarray(0, 2)
          .toString(),
      ).toBe('PK');
    });
  });

  describe('exit codes', () => {
    it('2 for bad usage, with a hint on stderr', async () => {
      const env = { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: stack.tokenFor('alice') };
      const runs = await runAll(env, [
        ['frobnicate'],
        ['submit'],
        ['submit', TWO_CUBES, '--preset', 'ultra'],
        ['submit', path.join(SHARED_ASSETS, 'no-such-file.glb')],
        ['list', '--state', 'sleeping'],
        ['watch', 'asset-alice-00000000-0000-0000-0000-000000000000'],
      ]);
      for (const [args, run] of runs) {
        expect({ args, code: run.code }).toEqual({ args, code: 2 });
        expect(run.stderr).not.toBe('');
      }
    });

    it('3 when not signed in or the token is refused', async () => {
      const notSignedIn = await runCli(['list'], { ASSET_FARM_CONFIG: path.join(configDir, 'nobody', 'config.json') });
      expect(notSignedIn.code).toBe(3);
      expect(notSignedIn.stderr).toContain('asset-farm login');

      const forged = jwt.sign({ sub: 'alice' }, 'x'.repeat(32), { algorithm: 'HS256' });
      const attempts: [string, string[]][] = [
        ['not-a-jwt', ['list']],
        [forged, ['list']],
        [forged, ['watch', 'asset-alice-1']],
        [forged, ['submit', TWO_CUBES]],
      ];
      const runs = await Promise.all(
        attempts.map(([token, args]) => runCli(args, { ASSET_FARM_API: stack.apiUrl, ASSET_FARM_TOKEN: token })),
      );
      runs.forEach((run, i) => {
        expect({ args: attempts[i]![1], code: run.code }).toEqual({ args: attempts[i]![1], code: 3 });
        expect(run.stderr).toContain('asset-farm login');
      });
      const badLogin = await runCli(['login', '--api', stack.apiUrl, '--token', forged], {
        ASSET_FARM_CONFIG: path.join(configDir, 'forged', 'config.json'),
      });
      expect(badLogin.code).toBe(3);
    });

    it('4 when the API is not listening', async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      const env = { ASSET_FARM_API: url, ASSET_FARM_TOKEN: stack.tokenFor('alice'), ASSET_FARM_CONFIG: path.join(configDir, 'x.json') };
      for (const [args, run] of await runAll(env, [
        ['list'],
        ['watch', 'asset-alice-1'],
        ['submit', TWO_CUBES],
        ['login', '--user', 'alice'],
      ])) {
        expect({ args, code: run.code }).toEqual({ args, code: 4 });
        expect(run.stderr).toContain(`Cannot reach the asset-farm API at ${url}`);
      }
    });
  });
});
