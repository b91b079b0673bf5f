import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import type { JobLog } from '../common/job-log.js';
import type { ApiMetrics } from './api-metrics.js';
import { ownerPattern, progressChannel, TERMINAL_EVENTS, type JobEventKind } from '../common/progress.js';
import { ClientMessage, CLOSE_CODES, type ErrorMessage } from '../common/socket-protocol.js';
import { AuthError, bearerToken, SOCKET_PROTOCOL, type JobOwner, type TokenVerifier } from './auth.js';
import { ClientConnection, SLOW_SOCKET_BYTES } from './client-connection.js';
import type { JobReconciler } from './job-reconciler.js';
import type { JobService } from './job-service.js';
import { FAILURES } from '../common/failures.js';

const MAX_FRAME_BYTES = 16 * 1024;
const MAX_BAD_MESSAGES = 20;
/** Longest a timer can be set for in Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Workflow descriptions fetched at once when checking watched jobs. */
const RECONCILE_CONCURRENCY = 8;
/** Finished jobs are checked for a Temporal reset on every this-many reconcile rounds (30 s by default). */
const RESET_CHECK_EVERY = 6;
/**
 * A job that stays quiet is checked less and less often: after 1, 2, 4… reconcile intervals, at most
 * this far apart. A running stage speaks every couple of seconds, so a quiet job is one waiting in the
 * queue for an HPC slot; a thousand of those cost 200 describes a second at a fixed 5 s (benchmark 1
 * saw the API describe its 1,000 waiting jobs inside the measured window).
 */
const MAX_QUIET_CHECK_MS = 60_000;

/** Reads the event kind from a message the Lua script built, without parsing it all. */
const EVENT_KIND = /"event":"([a-z-]+)"/;

export interface SocketHubOptions {
  /** How often sockets are pinged; one missed pong closes the socket. */
  pingIntervalMs?: number;
  /** How often the status of watched, running jobs is checked against Temporal (0 disables). */
  reconcileIntervalMs?: number;
  /** Bytes queued on a socket above which its progress is coalesced. */
  slowSocketBytes?: number;
}

/** A Redis subscription shared by the sockets that need it; `ready` settles when Redis has confirmed it. */
interface SharedSubscription {
  clients: Set<ClientConnection>;
  ready: Promise<unknown>;
}

/**
 * The /ws endpoint: authenticates at upgrade, checks job ownership on subscribe and relays each job's
 * Redis channel to the sockets that follow it. One Redis subscriber connection serves every socket of
 * this process; channels and patterns are reference-counted so Redis sends only what some socket
 * needs. Any gap in what Redis delivered (a Redis restart, a reconnect) is filled from the job's
 * replay log, and workflows that closed without their terminal event are reconciled from Temporal.
 */
export class SocketHub {
  private readonly wss: WebSocketServer;
  private readonly channels = new Map<string, SharedSubscription>();
  private readonly patterns = new Map<string, SharedSubscription>();
  private readonly clients = new Set<ClientConnection>();
  /** Jobs known to be over (a terminal event was seen): not polled any more. */
  private readonly finishedJobs = new Set<string>();
  /** When each job's stream last carried a message here: a job that speaks is running, no need to ask Temporal. */
  private readonly lastHeardAt = new Map<string, number>();
  /** A job silent for this long is checked against Temporal (the reconcile interval). */
  private readonly quietMs: number;
  /** Quiet jobs checked and found still running: how often in a row, and when next. Reset when the job speaks. */
  private readonly quietChecks = new Map<string, { count: number; at: number; next: number }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private subscriberLost = false;
  private reconciling = false;
  private reconcileRounds = 0;
  private readonly slowBytes: number;

  constructor(
    private readonly deps: {
      server: Server;
      verifier: TokenVerifier;
      subscriber: Redis;
      jobLog: JobLog;
      jobs: JobService;
      reconciler: JobReconciler;
      log: Logger;
      options?: SocketHubOptions;
      /** Relay counters and latency; none in unit tests that build a hub on its own. */
      metrics?: Pick<ApiMetrics, 'messagesRelayed' | 'progressCoalesced' | 'observeRelay'>;
    },
  ) {
    const options = deps.options ?? {};
    this.slowBytes = options.slowSocketBytes ?? SLOW_SOCKET_BYTES;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      // Echo only our protocol name, never the bearer entry.
      handleProtocols: (protocols) => (protocols.has(SOCKET_PROTOCOL) ? SOCKET_PROTOCOL : false),
    });
    deps.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    deps.subscriber.on('message', (channel: string, message: string) => this.route(this.channels.get(channel), channel, message));
    deps.subscriber.on('pmessage', (pattern: string, channel: string, message: string) =>
      this.route(this.patterns.get(pattern), channel, message),
    );
    deps.subscriber.on('close', () => {
      this.subscriberLost = true;
    });
    deps.subscriber.on('ready', () => {
      if (this.subscriberLost) void this.resyncAll();
      this.subscriberLost = false;
    });
    this.timers.push(setInterval(() => this.pingAll(), options.pingIntervalMs ?? 30_000));
    this.timers.push(
      setInterval(() => {
        for (const client of this.clients) if (client.holdsProgress) client.flushHeld();
      }, 100),
    );
    const reconcileMs = options.reconcileIntervalMs ?? 5000;
    this.quietMs = reconcileMs;
    if (reconcileMs > 0) this.timers.push(setInterval(() => void this.reconcileWatched(), reconcileMs));
    for (const timer of this.timers) timer.unref();
  }

  /** Open sockets, Redis subscriptions of this process, and the most bytes queued on one socket: for metrics and tests. */
  stats(): { sockets: number; channels: number; patterns: number; maxBufferedBytes: number } {
    let maxBufferedBytes = 0;
    for (const client of this.clients) maxBufferedBytes = Math.max(maxBufferedBytes, client.ws.bufferedAmount);
    return { sockets: this.clients.size, channels: this.channels.size, patterns: this.patterns.size, maxBufferedBytes };
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    let owner: JobOwner | null = null;
    let failure: AuthError | null = null;
    const token = bearerToken(req.headers);
    if (!token)
      failure = new AuthError(
        FAILURES.AUTH_MISSING.code,
        'Sign in first: send the token as a bearer.<jwt> subprotocol or an Authorization header.',
      );
    else {
      try {
        owner = this.deps.verifier.verify(token);
      } catch (err) {
        failure = err instanceof AuthError ? err : new AuthError(FAILURES.AUTH_INVALID.code, 'The access token is not valid.');
      }
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!owner) {
        // Accept, then close with a specific code: browsers cannot read an HTTP status from a failed upgrade.
        const refused = failure ?? new AuthError(FAILURES.AUTH_INVALID.code, 'The access token is not valid.');
        ws.close(CLOSE_CODES[refused.code], refused.message);
        return;
      }
      this.accept(ws, owner);
    });
  }

  private accept(ws: WebSocket, owner: JobOwner): void {
    const coalesced = this.deps.metrics?.progressCoalesced;
    const client = new ClientConnection(
      ws,
      owner,
      (c, jobId, afterSeq) => void this.catchUp(c, jobId, afterSeq),
      this.slowBytes,
      coalesced ? () => coalesced.inc() : undefined,
    );
    this.clients.add(client);
    if (owner.expiresAt !== undefined) {
      client.expiryTimer = setTimeout(
        () => ws.close(CLOSE_CODES.AUTH_EXPIRED, 'Your session has expired; sign in again.'),
        Math.min(MAX_TIMER_MS, Math.max(0, owner.expiresAt - Date.now())),
      );
      client.expiryTimer.unref();
    }
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      void this.onMessage(client, isBinary ? null : data.toString());
    });
    ws.on('close', () => this.drop(client));
    ws.on('error', (err) => this.deps.log.debug({ err: err.message, owner: owner.id }, 'socket error'));
  }

  private async onMessage(client: ClientConnection, text: string | null): Promise<void> {
    let parsed: ClientMessage;
    try {
      if (text === null) throw new Error('binary frame');
      parsed = ClientMessage.parse(JSON.parse(text));
    } catch {
      client.badMessages++;
      this.sendError(client, {
        type: 'error',
        code: FAILURES.BAD_MESSAGE.code,
        message: 'Expected JSON: {"type":"subscribe","jobId":"…","lastSeq":0}, unsubscribe or subscribeAll.',
      });
      if (client.badMessages > MAX_BAD_MESSAGES) client.ws.close(CLOSE_CODES.TOO_MANY_BAD_MESSAGES, 'Too many malformed messages');
      return;
    }
    try {
      if (parsed.type === 'subscribe') await this.subscribe(client, parsed.jobId, parsed.lastSeq);
      else if (parsed.type === 'unsubscribe') await this.unsubscribe(client, parsed.jobId);
      else await this.subscribeAll(client);
    } catch (err) {
      this.deps.log.error({ err, owner: client.owner.id, request: parsed }, 'socket request failed');
      this.sendError(client, {
        type: 'error',
        code: FAILURES.UNAVAILABLE.code,
        message: 'Progress is unavailable right now; the page will retry.',
        ...('jobId' in parsed ? { jobId: parsed.jobId } : {}),
      });
    }
  }

  private async subscribe(client: ClientConnection, jobId: string, lastSeq: number | undefined): Promise<void> {
    const owner = client.owner.id;
    // The job's stream names its owner in every message, and only the job's own workflow and activities
    // publish there: a stream of this owner proves the job is theirs without asking Temporal, so a
    // reconnect storm (an API restart with 1,000 sockets) costs Redis reads, not 1,000 describes. A
    // closure the stream lacks is then found by the reconcile round once the job has been quiet.
    const known = await this.deps.jobLog.readSnapshot(jobId).catch(() => null);
    if ((known?.event?.owner ?? known?.progress?.owner) !== owner) {
      const job = await this.deps.jobs.describeOwned(owner, jobId);
      if (!job) {
        this.sendError(client, { type: 'error', code: FAILURES.JOB_NOT_FOUND.code, jobId, message: 'No such job.' });
        return;
      }
      // Closed without its terminal event (terminated from the Temporal UI, or the event was lost), or
      // running again after a reset while the stream still ends with the old run's outcome: publish what
      // is missing first, so the catch-up below, and every other socket, gets it with a seq.
      await this.deps.reconciler.reconcile({ jobId, owner, assetName: job.assetName, status: job.status, runId: job.description.runId });
    }
    client.jobs.add(jobId);
    // Hold live messages from here on, and subscribe before reading, so nothing published during the
    // catch-up is lost: whatever is both read and received is dropped by seq.
    // The client's own view decides where this socket's stream restarts, whatever it had before.
    client.beginCatchUp(jobId).received = lastSeq ?? 0;
    await this.addClient(this.channels, progressChannel(owner, jobId), client, 'subscribe');
    client.send({ type: 'subscribed', jobId });
    await this.catchUp(client, jobId, lastSeq, true);
  }

  /**
   * Reads what a socket is missing of a job (after `afterSeq`, or the snapshot when undefined) and
   * sends it before the live messages held meanwhile. Failures are logged; the next live message
   * (which then shows a gap) or the Redis reconnect tries again.
   */
  private async catchUp(client: ClientConnection, jobId: string, afterSeq: number | undefined, rethrow = false): Promise<void> {
    client.beginCatchUp(jobId);
    try {
      const result =
        afterSeq === undefined
          ? {
              kind: 'snapshot' as const,
              snapshot: (await this.deps.jobLog.readSnapshot(jobId)) ?? { seq: 0, progress: null, event: null },
              reset: false,
            }
          : await this.deps.jobLog.catchUp(jobId, afterSeq);
      if (result.kind === 'snapshot' && result.snapshot.event) this.noteEvent(jobId, result.snapshot.event.event);
      client.finishCatchUp(jobId, result);
    } catch (err) {
      client.finishCatchUp(jobId, null);
      this.deps.log.warn({ err, jobId, owner: client.owner.id }, 'could not read a job from Redis; will retry on the next message');
      if (rethrow) throw err;
    }
  }

  private async unsubscribe(client: ClientConnection, jobId: string): Promise<void> {
    if (!client.jobs.delete(jobId)) return;
    if (!client.all) client.forget(jobId);
    await this.removeClient(this.channels, progressChannel(client.owner.id, jobId), client, 'unsubscribe');
  }

  private async subscribeAll(client: ClientConnection): Promise<void> {
    if (!client.all) {
      client.all = true;
      await this.addClient(this.patterns, ownerPattern(client.owner.id), client, 'psubscribe');
    }
    client.send({ type: 'subscribed', all: true });
  }

  private async addClient(
    map: Map<string, SharedSubscription>,
    key: string,
    client: ClientConnection,
    command: 'subscribe' | 'psubscribe',
  ): Promise<void> {
    let shared = map.get(key);
    if (!shared) {
      shared = { clients: new Set(), ready: this.deps.subscriber[command](key) };
      map.set(key, shared);
    }
    shared.clients.add(client);
    // A socket joining a subscription another socket started must wait for Redis to confirm it too,
    // or its catch-up could read before the channel is live and miss a message in between.
    try {
      await shared.ready;
    } catch (err) {
      if (map.get(key) === shared && shared.clients.size === 1) map.delete(key);
      shared.clients.delete(client);
      throw err;
    }
  }

  private async removeClient(
    map: Map<string, SharedSubscription>,
    key: string,
    client: ClientConnection,
    command: 'unsubscribe' | 'punsubscribe',
  ): Promise<void> {
    const shared = map.get(key);
    if (!shared) return;
    shared.clients.delete(client);
    if (shared.clients.size === 0) {
      map.delete(key);
      await this.deps.subscriber[command](key);
    }
  }

  private route(shared: SharedSubscription | undefined, channel: string, message: string): void {
    if (!shared) return;
    // progress:{owner}:{jobId}; neither part may contain ':'.
    const jobId = channel.slice(channel.indexOf(':', channel.indexOf(':') + 1) + 1);
    this.lastHeardAt.set(jobId, Date.now());
    const kind = message.startsWith('{"type":"event"') ? EVENT_KIND.exec(message)?.[1] : undefined;
    if (kind) this.noteEvent(jobId, kind as JobEventKind);
    else if (message.startsWith('{"type":"progress"')) this.deps.metrics?.observeRelay(message);
    let relayed = 0;
    // Encoded once for every socket, not once per socket (ws would convert a string on each send).
    const frame = shared.clients.size > 1 ? Buffer.from(message) : undefined;
    for (const client of shared.clients)
      if (client.open) {
        client.deliver(jobId, message, frame);
        relayed++;
      }
    if (relayed > 0) this.deps.metrics?.messagesRelayed.inc(relayed);
  }

  private noteEvent(jobId: string, kind: JobEventKind): void {
    // A reset in the Temporal UI brings a finished job back: any non-terminal event means it runs again.
    if (TERMINAL_EVENTS.has(kind)) this.finishedJobs.add(jobId);
    else this.finishedJobs.delete(jobId);
  }

  /** After the subscriber reconnects (Redis restarted), fills every socket's gap from the replay logs. */
  private async resyncAll(): Promise<void> {
    try {
      // ioredis re-sent SUBSCRIBE/PSUBSCRIBE before 'ready'; a PING behind them on the same connection
      // returns once they are in force, so the reads below cannot miss a message published in between.
      await this.deps.subscriber.ping();
    } catch (err) {
      this.deps.log.warn({ err }, 'Redis subscriber not ready for resync; gaps will be filled on the next message');
      return;
    }
    this.deps.log.info({ sockets: this.clients.size }, 'Redis subscriber reconnected; resyncing sockets from the replay logs');
    const work: Promise<void>[] = [];
    for (const client of this.clients) {
      for (const [jobId, stream] of client.streams) if (!stream.buffer) work.push(this.catchUp(client, jobId, stream.received));
    }
    await Promise.all(work);
  }

  /**
   * Notices workflows that closed with no code to say so (terminate, timeout, reset, or an event lost to
   * a Redis outage) while their sockets are open: every few seconds, describes each job a socket here
   * follows that has not finished and has been quiet for an interval. Describe is per job but strongly
   * consistent and bounded by the quiet jobs this process's sockets watch; a visibility query would lag
   * and need advanced visibility for IN.
   */
  private async reconcileWatched(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      // Finished jobs too, now and then: a reset from the Temporal UI brings one back with no event of
      // its own until the new run's first stage reports.
      const checkFinished = ++this.reconcileRounds % RESET_CHECK_EVERY === 0;
      // A job whose stream spoke within the last interval is running: a terminated or reset workflow's
      // activity stops reporting within a heartbeat, so it turns quiet and is checked on a later round.
      // Without this, 1,000 streaming jobs cost 200 describes a second (BENCHMARKS.md, "Make it fast 2").
      const now = Date.now();
      const quietSince = now - this.quietMs;
      const watched = new Map<string, string>();
      const due = (jobId: string): boolean => {
        const heardAt = this.lastHeardAt.get(jobId) ?? 0;
        if (heardAt > quietSince) return false;
        const checks = this.quietChecks.get(jobId);
        if (checks && heardAt > checks.at) this.quietChecks.delete(jobId);
        else if (checks && now < checks.next) return false;
        return true;
      };
      for (const client of this.clients)
        for (const jobId of client.streams.keys()) {
          if (watched.has(jobId)) continue;
          if (this.finishedJobs.has(jobId) ? checkFinished : due(jobId)) watched.set(jobId, client.owner.id);
        }
      const referenced = new Set<string>();
      for (const client of this.clients) for (const jobId of client.streams.keys()) referenced.add(jobId);
      for (const jobId of this.finishedJobs) if (!referenced.has(jobId)) this.finishedJobs.delete(jobId);
      for (const jobId of this.lastHeardAt.keys()) if (!referenced.has(jobId)) this.lastHeardAt.delete(jobId);
      for (const jobId of this.quietChecks.keys()) if (!referenced.has(jobId)) this.quietChecks.delete(jobId);
      const queue = [...watched];
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [jobId, owner] = next;
          try {
            const job = await this.deps.jobs.describe(jobId);
            if (!job || job.owner !== owner) continue;
            const closed = await this.deps.reconciler.reconcile({
              jobId,
              owner,
              assetName: job.assetName,
              status: job.status,
              runId: job.description.runId,
            });
            if (closed) {
              this.finishedJobs.add(jobId);
              this.quietChecks.delete(jobId);
            } else if (!this.finishedJobs.has(jobId)) {
              // Still running and still quiet: wait twice as long before asking again.
              const count = (this.quietChecks.get(jobId)?.count ?? 0) + 1;
              const checkedAt = Date.now();
              this.quietChecks.set(jobId, {
                count,
                at: checkedAt,
                next: checkedAt + Math.min(MAX_QUIET_CHECK_MS, this.quietMs * 2 ** count),
              });
            }
          } catch (err) {
            this.deps.log.warn({ err, jobId, owner }, 'could not check a watched job against Temporal');
          }
        }
      };
      await Promise.all(Array.from({ length: RECONCILE_CONCURRENCY }, worker));
    } finally {
      this.reconciling = false;
    }
  }

  private sendError(client: ClientConnection, error: ErrorMessage): void {
    client.send(error);
  }

  private drop(client: ClientConnection): void {
    if (!this.clients.delete(client)) return;
    if (client.expiryTimer) clearTimeout(client.expiryTimer);
    const owner = client.owner.id;
    const pending: Promise<void>[] = [];
    for (const jobId of client.jobs) pending.push(this.removeClient(this.channels, progressChannel(owner, jobId), client, 'unsubscribe'));
    if (client.all) pending.push(this.removeClient(this.patterns, ownerPattern(owner), client, 'punsubscribe'));
    Promise.all(pending).catch((err: unknown) => this.deps.log.warn({ err, owner }, 'Redis unsubscribe failed'));
  }

  private pingAll(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      client.ws.ping();
    }
  }

  /** Closes every socket with "service restart" so clients reconnect to another API process. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    for (const client of this.clients) client.ws.close(CLOSE_CODES.SHUTTING_DOWN, 'Server restarting; reconnect');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
