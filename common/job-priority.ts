import type { Priority } from '@temporalio/common';

/*
 * Plain data, no zod: the workflow bundle imports this (a batch's asset jobs, the HPC queue's places), and
 * every module the bundle imports is evaluated again for each workflow. The schema is common/jobs.ts JobPriority.
 */

/** How soon a job should get an HPC slot, relative to the other jobs waiting. */
export const JOB_PRIORITIES = ['urgent', 'normal', 'background'] as const;
export type JobPriority = (typeof JOB_PRIORITIES)[number];

/** Temporal priority keys: lower runs first; 3 is Temporal's own default, so `normal` is what unmarked tasks get. */
export const PRIORITY_KEYS: Readonly<Record<JobPriority, number>> = { urgent: 1, normal: 3, background: 5 };

/**
 * Whose share of the HPC machines a job draws on: its owner's, or their team's when the token names one
 * (`team:<name>`), so a team of artists shares one slice rather than each taking one.
 */
export function fairShareKey(owner: string, team?: string): string {
  return team ? `team:${team}` : owner;
}

/**
 * The Temporal priority a job's workflow starts with; its activities inherit it. Within one priority key,
 * tasks are dispatched fairly between fairness keys in proportion to their weights (default 1), so
 * one artist's 300 queued props cannot hold every slot while another's single upload waits.
 */
export function temporalPriority(level: JobPriority, shareKey: string, weights: ReadonlyMap<string, number>): Priority {
  return { priorityKey: PRIORITY_KEYS[level], fairnessKey: shareKey, fairnessWeight: weights.get(shareKey) ?? 1 };
}

/** The priority name of a Temporal priority key (metric labels, a batch's asset jobs); `key-<n>` for one not ours. */
export function priorityName(priorityKey: number): string {
  return Object.entries(PRIORITY_KEYS).find(([, key]) => key === priorityKey)?.[0] ?? `key-${priorityKey}`;
}
