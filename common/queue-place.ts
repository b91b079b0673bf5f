import type { QueueMessage } from './socket-protocol.js';

/** "about 40 s", "about 3 min", "about 1 h 20 min": a wait told roughly, as the estimate is. */
export function roughly(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `about ${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `about ${m} min`;
  return `about ${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

/**
 * What an artist reads while their job waits for an HPC slot, the same in the page and the CLI:
 * "waiting for the HPC machine: 3 jobs ahead of yours, about 2 min". Null once a machine took it.
 */
export function describeQueuePlace(place: Pick<QueueMessage, 'waiting' | 'ahead' | 'etaMs'>): string | null {
  if (!place.waiting) return null;
  const ahead = place.ahead === 0 ? 'yours is next' : `${place.ahead} job${place.ahead === 1 ? '' : 's'} ahead of yours`;
  return `waiting for the HPC machine: ${ahead}${place.etaMs === null ? '' : `, ${roughly(place.etaMs)}`}`;
}
