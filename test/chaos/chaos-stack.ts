import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';
import type { TestStack } from '../helpers/stack.js';
import { SHARED_ASSETS, uploadAsset } from '../helpers/upload.js';
import type { ChaosFigures, JobObserver } from './job-observer.js';

/** The sample assets a chaos workload cycles through: small and quick, and heavier ones that keep a stage busy. */
export const WORKLOAD_ASSETS = ['TwoCubes.glb', 'chr_knight.glb', 'ShapeCollection.glb', 'DamagedHelmet.glb'];

/** Submits count uploads spread over users, each tracked by the observer; returns the job ids. */
export async function submitJobs(stack: TestStack, observer: JobObserver, users: string[], count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const user = users[i % users.length]!;
      const asset = WORKLOAD_ASSETS[i % WORKLOAD_ASSETS.length]!;
      const res = await uploadAsset(stack.apiUrl, stack.tokenFor(user), [path.join(SHARED_ASSETS, asset)]);
      expect(res.status, `upload ${i} (${asset})`).toBe(202);
      const { jobId } = (await res.json()) as { jobId: string };
      observer.track(user, jobId);
      return jobId;
    }),
  );
}

/** Waits until at least `count` of the observed jobs are past their first stage: the moment to inject a fault. */
export async function whenJobsRunning(observer: JobObserver, count: number): Promise<void> {
  await waitFor(
    () => [...observer.jobs.values()].filter((j) => j.lastSeq >= 4 && !j.outcome).length >= Math.min(count, observer.jobs.size),
    {
      timeoutMs: 120_000,
      what: `${count} jobs under way`,
      intervalMs: 50,
    },
  );
}

/** Prints the figures of a fault run in one line (the numbers RELIABILITY.md quotes) and asserts the promises. */
export function reportFigures(fault: string, figures: ChaosFigures, extra: Record<string, unknown> = {}): void {
  console.log(`[chaos] ${fault}: ${JSON.stringify({ ...figures, ...extra })}`);
  expect(figures.lost, `${fault}: lost jobs`).toBe(0);
  expect(figures.gaps, `${fault}: progress gaps`).toBe(0);
  expect(figures.duplicates, `${fault}: duplicate messages`).toBe(0);
  expect(figures.foreign, `${fault}: messages of another user's job`).toBe(0);
}

/** Each job's REST view must agree with what its owner's stream ended on (the snapshot is right again). */
export async function expectSnapshotsAgree(stack: TestStack, observer: JobObserver): Promise<void> {
  for (const job of observer.jobs.values()) {
    const res = await fetch(`${stack.apiUrl}/api/jobs/${job.jobId}`, { headers: { authorization: `Bearer ${stack.tokenFor(job.user)}` } });
    const body = (await res.json()) as { status: string; snapshot: { seq: number; event: { event: string } | null } | null };
    expect(body.snapshot?.event?.event, job.jobId).toBe(job.outcome);
    expect(body.snapshot?.seq, job.jobId).toBe(job.lastSeq);
  }
}

/** Resident memory of a process in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}
