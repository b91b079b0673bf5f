import WebSocket from 'ws';
import { CLOSE_CODES } from '../common/socket-protocol.js';
import { TERMINAL_EVENTS, type JobEventMessage } from '../common/progress.js';
import { unreachableError, type ApiClient } from './api-client.js';
import { CliError } from './cli-error.js';
import { outcomeOfStatus, ServerMessage, type JobOutcome } from './socket-messages.js';

export interface WatchResult {
  outcome: JobOutcome;
  /** The terminal event, unless the outcome was learnt from the REST status instead (e.g. an expired replay log). */
  event: JobEventMessage | null;
}

/** Defaults of WatchOptions, in one object (as ws and the Temporal SDK keep theirs). */
export const WATCH_DEFAULTS = {
  giveUpAfterMs: 60_000,
  statusPollMs: 5_000,
} as const satisfies Required<Pick<WatchOptions, 'giveUpAfterMs' | 'statusPollMs'>>;

export interface WatchOptions {
  /** Called with every message about the job, in seq order. */
  onMessage(message: ServerMessage): void;
  /** Called when the socket dropped and the watcher reconnects (the view may say so). */
  onReconnecting?(attempt: number, reason: string): void;
  /**
   * How long the API may stay unreachable before the watch gives up.
   * @default 60000 (WATCH_DEFAULTS.giveUpAfterMs)
   */
  giveUpAfterMs?: number;
  /**
   * How often the REST status is checked as a safety net for a terminal event that never arrives.
   * @default 5000 (WATCH_DEFAULTS.statusPollMs)
   */
  statusPollMs?: number;
  /** The outcome REST reported before watching: used if the snapshot no longer holds the terminal event. */
  endedAs?: JobOutcome | null;
  /** Replay the job from its first message (lastSeq 0) instead of starting from a snapshot: for a job just submitted. */
  fromStart?: boolean;
  /** Stops watching (Ctrl-C); the watch then rejects with INTERRUPTED. */
  signal?: AbortSignal;
}

const AUTH_CLOSE_CODES = new Set<number>([CLOSE_CODES.AUTH_MISSING, CLOSE_CODES.AUTH_INVALID, CLOSE_CODES.AUTH_EXPIRED]);
const SOCKET_PROTOCOL = 'asset-farm.v1';
/** How long a terminal event may lag behind the closed status REST reports. */
const TERMINAL_EVENT_GRACE_MS = 2_000;
const MAX_RECONNECT_DELAY_MS = 3_000;

/**
 * Follows one job over /ws until it ends. On a dropped socket it reconnects with backoff and resumes with
 * the highest seq seen as lastSeq, so the server replays exactly what was missed (docs/PROTOCOL.md).
 */
export function watchJob(client: ApiClient, jobId: string, options: WatchOptions): Promise<WatchResult> {
  const giveUpAfterMs = options.giveUpAfterMs ?? WATCH_DEFAULTS.giveUpAfterMs;
  const statusPollMs = options.statusPollMs ?? WATCH_DEFAULTS.statusPollMs;

  return new Promise<WatchResult>((resolve, reject) => {
    let lastSeq: number | undefined = options.fromStart ? 0 : undefined;
    let socket: WebSocket | null = null;
    let settled = false;
    let reconnects = 0;
    let unreachableSince: number | null = null;
    let reconnectTimer: NodeJS.Timeout | null = null;
    let closedTimer: NodeJS.Timeout | null = null;

    const finish = (error: Error | null, result?: WatchResult) => {
      if (settled) return;
      settled = true;
      clearInterval(statusTimer);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      if (closedTimer) clearTimeout(closedTimer);
      socket?.removeAllListeners();
      socket?.on('error', () => undefined);
      socket?.close();
      if (error) reject(error);
      else resolve(result!);
    };

    const onEvent = (event: JobEventMessage | null) => {
      if (event && TERMINAL_EVENTS.has(event.event)) finish(null, { outcome: event.event as JobOutcome, event });
    };

    // A job can close without a terminal event on the socket (terminated from the Temporal UI: no workflow code
    // runs). Once REST says it is closed, the event still in flight gets a moment, then the status decides.
    const statusTimer = setInterval(() => {
      client.getJob(jobId).then(
        (job) => {
          const outcome = outcomeOfStatus(job.status);
          if (outcome && !closedTimer) closedTimer = setTimeout(() => finish(null, { outcome, event: null }), TERMINAL_EVENT_GRACE_MS);
        },
        (err: unknown) => {
          // Unreachable is the socket's business (it reconnects and gives up in time); anything else ends the watch.
          if (!(err instanceof CliError && err.code === 'API_UNREACHABLE')) finish(err instanceof Error ? err : new Error(String(err)));
        },
      );
    }, statusPollMs);

    const scheduleReconnect = (reason: string) => {
      if (settled) return;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > giveUpAfterMs) {
        finish(
          new CliError(
            'API_UNREACHABLE',
            `Lost the connection to ${client.api} for over ${Math.round(giveUpAfterMs / 1000)} s (${reason}); ` +
              `the job goes on: run \`asset-farm watch ${jobId}\` again later.`,
          ),
        );
        return;
      }
      reconnects += 1;
      options.onReconnecting?.(reconnects, reason);
      // Short, jittered backoff: a restarting API is back within seconds, and watchers should not reconnect in step.
      const delay = Math.min(MAX_RECONNECT_DELAY_MS, 250 * 2 ** Math.min(reconnects, 6)) * (0.8 + Math.random() * 0.4);
      reconnectTimer = setTimeout(connect, delay);
    };

    const connect = () => {
      if (settled) return;
      const ws = new WebSocket(client.socketUrl, [SOCKET_PROTOCOL], {
        headers: client.bearer ? { authorization: `Bearer ${client.bearer}` } : {},
        handshakeTimeout: 10_000,
      });
      socket = ws;
      let lastError = '';
      ws.on('open', () => {
        unreachableSince = null;
        ws.send(JSON.stringify({ type: 'subscribe', jobId, ...(lastSeq !== undefined ? { lastSeq } : {}) }));
      });
      ws.on('message', (data) => {
        let json: unknown;
        try {
          json = JSON.parse(data.toString());
        } catch {
          json = undefined;
        }
        const parsed = ServerMessage.safeParse(json);
        // A message this CLI does not know (a newer server) is skipped rather than ending the watch.
        if (!parsed.success) return;
        const message = parsed.data;
        if (message.type === 'error') {
          if (message.code === 'JOB_NOT_FOUND')
            finish(new CliError('JOB_NOT_FOUND', `No job ${jobId} among yours; \`asset-farm list\` shows your jobs.`));
          else if (message.code === 'UNAVAILABLE') ws.close();
          else finish(new CliError('BAD_RESPONSE', `The server refused the subscription: ${message.message}`));
          return;
        }
        if (message.type === 'subscribed') return;
        if ('jobId' in message && message.jobId !== jobId) return;
        // A place in the HPC queue line is outside the job's sequence: shown as it comes.
        if (message.type === 'queue') {
          options.onMessage(message);
          return;
        }
        if (message.type === 'snapshot') {
          lastSeq = message.seq;
          options.onMessage(message);
          onEvent(message.event);
          if (options.endedAs) finish(null, { outcome: options.endedAs, event: null });
          return;
        }
        // The server never repeats a seq after a lastSeq resume; this guards a reconnect that raced a live message.
        if (lastSeq !== undefined && message.seq <= lastSeq) return;
        lastSeq = message.seq;
        options.onMessage(message);
        if (message.type === 'event') onEvent(message);
      });
      ws.on('error', (err) => {
        lastError = unreachableError(client.api, err) ? ((err as NodeJS.ErrnoException).code ?? err.message) : err.message;
      });
      ws.on('close', (code, reason) => {
        if (settled) return;
        if (AUTH_CLOSE_CODES.has(code)) {
          finish(new CliError('AUTH_REFUSED', `${reason.toString() || 'The token was refused.'} Run \`asset-farm login\` and try again.`));
          return;
        }
        scheduleReconnect(lastError || `closed with ${code}${reason.length ? ` ${reason.toString()}` : ''}`);
      });
    };

    options.signal?.addEventListener('abort', () =>
      finish(new CliError('INTERRUPTED', `Stopped watching; the job goes on. \`asset-farm watch ${jobId}\` picks it up again.`)),
    );
    connect();
  });
}
