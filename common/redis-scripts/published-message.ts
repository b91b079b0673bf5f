import { JobEventKind } from '../progress.js';

/**
 * Reads the few fields the API needs from a message exactly as publish-job-message.lua built it, without
 * parsing the whole JSON: the API relays every message to every socket that follows the job, and a
 * JSON.parse per message per process is the cost the script's layout avoids.
 *
 * The layout this relies on (the script's `'{"type":"' .. type .. '","seq":' .. seq .. ',' .. payload`):
 * - the message starts with `{"type":"progress"` or `{"type":"event"`, then `"seq":N,`;
 * - the rest is `JSON.stringify` of fields validated by the zod schemas of common/progress.ts, in their
 *   key order: an event's `event` comes before any free-text field, a progress message's `ts` is its
 *   last key. Strings inside are JSON-escaped, so a quote in a message text can never look like a key.
 * Any change to that layout changes this module and its test (published-message.test.ts) with it.
 */

/** The type and sequence number the script put at the head of a message. */
export interface PublishedHead {
  type: 'progress' | 'event';
  seq: number;
}

const OWNER = /^\{"type":"(?:progress|event)","seq":\d+,"jobId":"[A-Za-z0-9._@-]+","owner":"([A-Za-z0-9._@-]+)"/;
const HEAD = /^\{"type":"(progress|event)","seq":(\d+),/;
const EVENT_KIND = /^\{"type":"event","seq":\d+,"jobId":"[A-Za-z0-9._@-]+","owner":"[A-Za-z0-9._@-]+","event":"([a-z-]+)"/;
const PROGRESS_TS = /,"ts":(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\}$/i;

/** The head of a published message, or null when the text is not one the script built. */
export function readPublishedHead(raw: string): PublishedHead | null {
  const head = HEAD.exec(raw);
  return head ? { type: head[1] as PublishedHead['type'], seq: Number(head[2]) } : null;
}

/** The event kind of a published `event` message; undefined for progress or anything unrecognised. */
export function readEventKind(raw: string): JobEventKind | undefined {
  const kind = JobEventKind.safeParse(EVENT_KIND.exec(raw)?.[1]);
  return kind.success ? kind.data : undefined;
}

/** The producer's clock (`ts`, ms since epoch) of a published `progress` message; undefined otherwise. */
export function readProgressTs(raw: string): number | undefined {
  if (!raw.startsWith('{"type":"progress"')) return undefined;
  const ts = PROGRESS_TS.exec(raw);
  return ts ? Number(ts[1]) : undefined;
}

/** The owner a published message names (every message carries it right after the job id); undefined otherwise. */
export function readPublishedOwner(raw: string): string | undefined {
  return OWNER.exec(raw)?.[1];
}
