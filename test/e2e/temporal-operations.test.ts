import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { BUILTIN_STAGES, planStages } from '../../common/stages.js';
import { ServiceProcess } from '../../scripts/lib/service-process.js';
import { waitForPoller } from '../../scripts/lib/temporal-server.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { TestSocket } from '../helpers/socket-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';

const run = promisify(execFile);

/** Seqs of one job's messages on a socket: they must be strictly increasing (no duplicate, no reordering). */
function expectOrderedSeqs(socket: TestSocket, jobId: string): number[] {
  const seqs = socket.messages
    .filter((m) => m.jobId === jobId && (m.type === 'progress' || m.type === 'event'))
    .map((m) => m.seq as number);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
  return seqs;
}

/** One more HPC worker process on the stack, polling taskQueue (what a second HPC host runs). */
async function startHpcWorker(stack: TestStack, name: string, taskQueue: string): Promise<ServiceProcess> {
  const proc = new ServiceProcess(name, process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'worker/hpc.ts')], {
    env: { ...stack.env, HPC_TASK_QUEUE: taskQueue },
    cwd: PROJECT_ROOT,
  });
  stack.processes.set(name, proc);
  await waitForPoller({
    address: stack.temporalAddress,
    namespace: stack.namespace,
    taskQueue,
    kind: 'activity',
    pid: proc.child.pid!,
    timeoutMs: 120_000,
    isAlive: () => proc.child.exitCode === null,
  });
  return proc;
}

/** The identities of the workers that started the job's activities, by activity type. */
async function activityWorkers(client: Client, jobId: string): Promise<{ type: string; queue: string; identity: string }[]> {
  const events = (await client.workflow.getHandle(jobId).fetchHistory()).events ?? [];
  const scheduled = new Map(
    events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!]),
  );
  return events.flatMap((e) => {
    const started = e.activityTaskStartedEventAttributes;
    const attrs = started ? scheduled.get(String(started.scheduledEventId)) : undefined;
    return started && attrs
      ? [{ type: attrs.activityType?.name ?? '', queue: attrs.taskQueue?.name ?? '', identity: started.identity ?? '' }]
      : [];
  });
}

/**
 * What an engineer does from the Temporal UI (or the `temporal` CLI, which sends the same RPCs), seen
 * from the artist's socket: a reset of a finished job to one of its stages, and an activity pause and
 * unpause on a running stage. Terminate and cancel are covered by test/streaming and test/cli.
 */
describe('Temporal UI operations in the artist’s stream', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  beforeAll(async () => {
    // A short reconcile interval so the API notices the reset within seconds (finished jobs are checked every 6th round).
    stack = await startStack({ env: { API_RECONCILE_INTERVAL_MS: '300' } });
    connection = await Connection.connect({ address: stack.temporalAddress });
    client = new Client({ connection, namespace: stack.namespace });
  });
  afterAll(async () => {
    await connection?.close();
    await stack?.stop();
  });

  it('a reset of a completed job to its textures stage shows the job running again and completing again', async () => {
    const token = stack.tokenFor('rita');
    const socket = TestSocket.connect(stack.wsUrl, token);
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed');
    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')]);
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    const firstDone = await socket.waitFor((m) => m.jobId === jobId && m.event === 'completed', 90_000, 'the first run to complete');
    const handle = client.workflow.getHandle(jobId);
    await handle.result();
    const firstRun = (await handle.describe()).runId;
    expect(firstDone.runId).toBe(firstRun);

    // The reset point the UI offers for a stage: the workflow task that scheduled its activity.
    const events = (await handle.fetchHistory()).events ?? [];
    const textures = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'processTextures');
    const resetPoint = events.filter((e) => e.workflowTaskCompletedEventAttributes && Number(e.eventId) < Number(textures?.eventId)).at(-1);
    expect(resetPoint).toBeDefined();

    // With the HPC worker stopped, what the artist sees until it resumes is the restart announcement (the
    // old page kept showing "completed" before the fix): from the API's reconciler, or from the new run
    // itself when it redoes the reset workflow task first (events are local activities in that task).
    await stack.processes.get('worker:hpc')!.stop();
    const { runId: newRun } = await client.workflowService.resetWorkflowExecution({
      namespace: stack.namespace,
      workflowExecution: { workflowId: jobId, runId: firstRun },
      reason: 'test: redo the textures',
      workflowTaskFinishEventId: resetPoint!.eventId,
      requestId: randomUUID(),
    });
    expect(newRun).toBeTruthy();
    const announced = await socket.waitFor(
      (m) => m.jobId === jobId && m.event === 'started' && m.runId === newRun,
      30_000,
      'the API to announce the new run',
    );
    expect(announced.seq as number).toBeGreaterThan(firstDone.seq as number);
    expect(announced.message).toMatch(/restarted by an engineer/);

    // The REST view agrees: running, and its snapshot no longer ends with the old outcome.
    const view = (await (await fetch(`${stack.apiUrl}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      status: string;
      snapshot: { event: { event: string; runId?: string } };
    };
    expect(view.status).toBe('RUNNING');
    // `started`, or the redone stage's `stage-started` the new run published right after it.
    expect(view.snapshot.event).toMatchObject({ event: expect.stringMatching(/^(started|stage-started)$/), runId: newRun });

    await stack.startComponent('worker:hpc');
    const again = await socket.waitFor(
      (m) => m.jobId === jobId && m.event === 'completed' && m.runId === newRun,
      90_000,
      'the new run to complete',
    );
    expect(again.result).toMatchObject({ meshes: 2, triangles: 24 });
    expectOrderedSeqs(socket, jobId);
    // The new run redid only the stages after the reset point.
    const after = socket.messages.filter((m) => m.jobId === jobId && (m.seq as number) > (announced.seq as number));
    const plan = planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] }).map((s) => s.name);
    expect([...new Set(after.filter((m) => m.type === 'progress').map((m) => m.stage))]).toEqual(plan.slice(plan.indexOf('textures')));
    await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', { timeoutMs: 30_000, what: 'the new run to close' });
    socket.close();
  });

  it('an activity paused on a running stage stops it; unpaused, the stage resumes from its checkpoint and the job completes', async () => {
    const token = stack.tokenFor('paula');
    const socket = TestSocket.connect(stack.wsUrl, token);
    await socket.opened;
    socket.send({ type: 'subscribeAll' });
    await socket.waitFor((m) => m.type === 'subscribed');
    // archive keeps the helmet's five 2048² textures at full size: the textures stage runs long enough to pause.
    const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'DamagedHelmet.glb')], {
      options: JSON.stringify({ preset: 'archive', textureFormat: 'webp' }),
    });
    const { jobId } = (await res.json()) as { jobId: string };
    await socket.waitFor((m) => m.jobId === jobId && m.type === 'progress' && m.stage === 'textures', 120_000, 'textures progress');

    const handle = client.workflow.getHandle(jobId);
    const pendingTextures = async () =>
      (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'processTextures');
    const activityId = (await pendingTextures())?.activityId;
    expect(activityId).toBeTruthy();
    const cli = process.env.TEMPORAL_CLI_PATH ?? 'temporal';
    const target = [
      '--workflow-id',
      jobId,
      '--activity-id',
      activityId!,
      '--address',
      stack.temporalAddress,
      '--namespace',
      stack.namespace,
    ];
    await run(cli, ['activity', 'pause', ...target, '--reason', 'test: HPC maintenance']);
    // The running attempt stops at its next heartbeat (at most a second apart): PAUSE_REQUESTED, then PAUSED.
    await waitFor(
      async () => (await pendingTextures())?.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED,
      {
        timeoutMs: 30_000,
        what: 'the running attempt to stop and the activity to be paused',
      },
    );
    const pausedAt = socket.messages.length;

    await run(cli, ['activity', 'unpause', ...target]);
    const done = await socket.waitFor((m) => m.jobId === jobId && m.event === 'completed', 240_000, 'the job to complete after unpause');
    expect(done.result).toMatchObject({ textures: 5 });
    expectOrderedSeqs(socket, jobId);
    // What the artist sees after the unpause: the stage retried as a new attempt, resuming from its heartbeat
    // checkpoint if it had one (textures finished before the pause are not redone), then the rest of the job.
    const after = socket.messages.slice(pausedAt).filter((m) => m.jobId === jobId);
    const retrying = after.find((m) => m.type === 'event');
    expect(retrying).toMatchObject({ event: 'retrying', stage: 'textures' });
    expect(retrying!.message).toMatch(/attempt 2/);
    const resumed = after.filter((m) => m.type === 'progress' && m.stage === 'textures' && (m.seq as number) > (retrying!.seq as number));
    // "Resuming textures" when the pause came after a texture was checkpointed, else "Starting textures".
    expect(resumed[0]).toMatchObject({ attempt: 2, message: expect.stringMatching(/^(Resuming|Starting) textures$/) });
    expect(resumed.every((m) => m.attempt === 2)).toBe(true);
    const finished = socket.messages.filter((m) => m.jobId === jobId && m.event === 'stage-finished' && m.stage === 'textures');
    expect(finished).toHaveLength(1);
    // The artist never saw a failure or a cancel for the pause.
    expect(socket.messages.some((m) => m.jobId === jobId && (m.event === 'failed' || m.event === 'cancelled'))).toBe(false);
    socket.close();
  });

  // HPC capacity shares this stack: two more HPC worker processes, as two more hosts would run them.
  it('two HPC workers share the hpc queue, and a job pinned with hpcQueue runs only on that host’s worker', async () => {
    const token = stack.tokenFor('hana');
    const second = await startHpcWorker(stack, 'worker:hpc-2', 'hpc');
    const pinned = await startHpcWorker(stack, 'worker:hpc-pinned', 'hpc-host-b');
    const first = stack.processes.get('worker:hpc')!;
    const identityOf = (proc: ServiceProcess) => `${proc.child.pid}@`;
    const submit = async (options: object) => {
      const res = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')], { options: JSON.stringify(options) });
      expect(res.status).toBe(202);
      return ((await res.json()) as { jobId: string }).jobId;
    };

    // A queue name that could be anything but a plain name is refused before a job starts.
    const bad = await uploadAsset(stack.apiUrl, token, [path.join(SHARED_ASSETS, 'TwoCubes.glb')], {
      options: JSON.stringify({ hpcQueue: 'hpc host"b' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_OPTIONS');

    const pinnedJob = await submit({ hpcQueue: 'hpc-host-b' });
    // Which of two idle pollers gets a task is up to the server: submit jobs until each worker ran a stage.
    const shared: string[] = [];
    const identities = new Set<string>();
    while (!(identities.has(identityOf(first)) && identities.has(identityOf(second))) && shared.length < 6) {
      const batch = await Promise.all([submit({}), submit({})]);
      shared.push(...batch);
      for (const jobId of batch) {
        await client.workflow.getHandle(jobId).result();
        for (const a of await activityWorkers(client, jobId)) if (a.queue === 'hpc') identities.add(a.identity.replace(/@.*/, '@'));
      }
    }
    expect(identities).toContain(identityOf(first));
    expect(identities).toContain(identityOf(second));
    expect(identities).not.toContain(identityOf(pinned));

    await client.workflow.getHandle(pinnedJob).result();
    const pinnedActivities = (await activityWorkers(client, pinnedJob)).filter((a) => a.type !== 'publishJobEvent');
    // Every stage of the job's plan (the default preset's, from the registry), each on the pinned host.
    expect(pinnedActivities.map((a) => a.type)).toEqual(
      planStages(BUILTIN_STAGES, { preset: 'game-ready', fileNames: ['TwoCubes.glb'] }).map((s) => s.activity),
    );
    for (const a of pinnedActivities) {
      expect(a.queue).toBe('hpc-host-b');
      expect(a.identity.startsWith(identityOf(pinned))).toBe(true);
    }
  });
});
