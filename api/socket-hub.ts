import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RedisClient } from '../common/redis.js';
import type { Logger } from 'pino';
import pLimit, { type LimitFunction } from 'p-limit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { type WebSocket, WebSocketServer } from 'ws';
import type { HpcQueueBook } from '../common/hpc-queue.js';
import { catchUpFrom, type JobCatchUp, type JobLog, type JobStreamRead } from '../common/job-log.js';
import type { ApiMetrics } from './api-metrics.js';
import { ownerPattern, progressChannel } from '../common/progress.js';
import { readEventKind } from '../common/redis-scripts/published-message.js';
import { ClientMessage, CLOSE_CODES, type ErrorMessage } from '../common/socket-protocol.js';
import { AuthError, bearerToken, SOCKET_PROTOCOL, type JobOwner, type TokenVerifier } from './auth.js';
import { ClientConnection, SLOW_SOCKET_BYTES } from './client-connection.js';
import { QuietJobWatch, type JobReconciler } from './job-reconciler.js';
import type { JobService } from './job-service.js';
import { RedisFanout } from './redis-fanout.js';
import { FAILURES } from '../common/failures.js';

const MAX_FRAME_BYTES = 16 * 1024;
const MAX_BAD_MESSAGES = 20;
/** Longest a timer can be set for in Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Job stream reads (catch-ups) in Redis at once, so a resync of every socket queues here, not in Redis's command timeout. */
const STREAM_READS_AT_ONCE = 16;

export interface SocketHubOptions {
  /**
   * How often sockets are pinged; one missed pong closes the socket.
   * @default 30_000
   */
  pingIntervalMs?: number;
  /**
   * How often the status of watched, running jobs is checked against Temporal (0 disables).
   * @default 5000
   */
  reconcileIntervalMs?: number;
  /**
   * Bytes queued on a socket above which its progress is coalesced.
   * @default 262_144 (SLOW_SOCKET_BYTES)
   */
  slowSocketBytes?: number;
  /**
   * Messages one socket may send per 10 s; the next one closes it with 4429. A page that reconnects
   * resubscribes each job it shows once, well under this.
   * @default 200
   */
  messagesPer10s?: number;
  /**
   * Jobs one socket may follow by id at once; beyond it `subscribe` answers `TOO_MANY_SUBSCRIPTIONS`.
   * @default 500
   */
  maxSubscriptionsPerSocket?: number;
  /**
   * Jobs one user may follow by id at once over all their sockets on this process.
   * @default 2000
   */
  maxSubscriptionsPerUser?: number;
  /**
   * Sockets one user may hold open on this process; the next one is closed with 4430.
   * @default 20
   */
  maxSocketsPerUser?: number;
  /**
   * Ownership checks of `subscribe` (a Redis read, and a Temporal describe when the stream does not
   * prove the job is the caller's) running at once in this process, over all sockets.
   * @default 16
   */
  ownershipChecks?: number;
  /**
   * Ownership checks waiting for a slot, over all sockets; beyond it `subscribe` answers `UNAVAILABLE`
   * at once (the client tries again later) instead of queueing without bound.
   * @default 1000
   */
  maxQueuedOwnershipChecks?: number;
  /**
   * Ownership checks one socket may have running or waiting; beyond it `subscribe` answers
   * `UNAVAILABLE`, so one socket cannot fill the queue everyone shares.
   * @default 32
   */
  maxOwnershipChecksPerSocket?: number;
}

/** The value of each SocketHubOptions field when it is not set. */
export const SOCKET_HUB_DEFAULTS: Required<SocketHubOptions> = {
  pingIntervalMs: 30_000,
  reconcileIntervalMs: 5000,
  slowSocketBytes: SLOW_SOCKET_BYTES,
  messagesPer10s: 200,
  maxSubscriptionsPerSocket: 500,
  maxSubscriptionsPerUser: 2000,
  maxSocketsPerUser: 20,
  ownershipChecks: 16,
  maxQueuedOwnershipChecks: 1000,
  maxOwnershipChecksPerSocket: 32,
};

/**
 * The /ws endpoint: authenticates at upgrade, speaks the protocol (docs/PROTOCOL.md), checks job
 * ownership on subscribe and relays each job's messages to the sockets that follow it. The Redis
 * subscriptions are shared through RedisFanout (api/redis-fanout.ts); any gap in what Redis delivered (a
 * Redis restart, a reconnect) is filled from the job's replay log, and jobs that go quiet are checked
 * against Temporal by QuietJobWatch (api/job-reconciler.ts).
 */
export class SocketHub {
  private readonly wss: WebSocketServer;
  private readonly fanout: RedisFanout<ClientConnection>;
  private readonly watch: QuietJobWatch;
  private readonly clients = new Set<ClientConnection>();
  /** Each user's open sockets on this process: for the per-user caps. */
  private readonly socketsOf = new Map<string, Set<ClientConnection>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly options: Required<SocketHubOptions>;
  /** Ownership checks of the whole process: a flood from one socket queues here, not in Redis or Temporal. */
  private readonly ownershipLimit: LimitFunction;
  private readonly messageRate: RateLimiterMemory;
  /** Stream reads asked for and not yet sent to Redis, by job (readStream). */
  private readonly streamReads = new Map<string, Promise<JobStreamRead>>();
  private readonly streamReadLimit = pLimit(STREAM_READS_AT_ONCE);

  constructor(
    private readonly deps: {
      server: Server;
      verifier: TokenVerifier;
      subscriber: RedisClient;
      jobLog: JobLog;
      jobs: JobService;
      reconciler: JobReconciler;
      /** The HPC queues' waiting lines: a job subscribed to while it waits is told its place at once. */
      hpcQueue?: HpcQueueBook;
      log: Logger;
      options?: SocketHubOptions;
      /** Relay counters and latency; none in unit tests that build a hub on its own. */
      metrics?: Pick<ApiMetrics, 'messagesRelayed' | 'progressCoalesced' | 'observeRelay' | 'socketRefusals' | 'ownershipChecks'>;
    },
  ) {
    const options = { ...SOCKET_HUB_DEFAULTS, ...deps.options };
    this.options = options;
    this.ownershipLimit = pLimit(options.ownershipChecks);
    this.messageRate = new RateLimiterMemory({ points: options.messagesPer10s, duration: 10 });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      // Echo only our protocol name, never the bearer entry.
      handleProtocols: (protocols) => (protocols.has(SOCKET_PROTOCOL) ? SOCKET_PROTOCOL : false),
    });
    deps.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.fanout = new RedisFanout<ClientConnection>({
      subscriber: deps.subscriber,
      log: deps.log,
      onMessage: (channel, message, clients) => this.relay(channel, message, clients),
      onResubscribed: () => void this.resyncAll(),
    });
    this.watch = new QuietJobWatch({
      reconciler: deps.reconciler,
      jobs: deps.jobs,
      log: deps.log,
      intervalMs: options.reconcileIntervalMs,
      watched: () => this.watchedJobs(),
    });
    this.timers.push(setInterval(() => this.pingAll(), options.pingIntervalMs));
    this.timers.push(
      setInterval(() => {
        for (const client of this.clients) if (client.holdsProgress) client.flushHeld();
      }, 100),
    );
    for (const timer of this.timers) timer.unref();
  }

  /** Open sockets, Redis subscriptions of this process, and the most bytes queued on one socket: for metrics and tests. */
  stats(): { sockets: number; channels: number; patterns: number; maxBufferedBytes: number } {
    let maxBufferedBytes = 0;
    for (const client of this.clients) maxBufferedBytes = Math.max(maxBufferedBytes, client.ws.bufferedAmount);
    return { sockets: this.clients.size, ...this.fanout.counts(), maxBufferedBytes };
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
      const theirs = this.socketsOf.get(owner.id);
      if (theirs && theirs.size >= this.options.maxSocketsPerUser) {
        this.deps.metrics?.socketRefusals.inc({ reason: 'sockets' });
        ws.close(CLOSE_CODES.TOO_MANY_SOCKETS, `At most ${this.options.maxSocketsPerUser} open sockets per user; close another tab.`);
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
      this.options.slowSocketBytes,
      coalesced ? () => coalesced.inc() : undefined,
    );
    this.clients.add(client);
    let theirs = this.socketsOf.get(owner.id);
    if (!theirs) this.socketsOf.set(owner.id, (theirs = new Set()));
    theirs.add(client);
    client.expiryTimer = setTimeout(
      () => ws.close(CLOSE_CODES.AUTH_EXPIRED, 'Your session has expired; sign in again.'),
      Math.min(MAX_TIMER_MS, Math.max(0, owner.expiresAt - Date.now())),
    );
    client.expiryTimer.unref();
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      // Counted before anything is parsed or read: a flood costs this process a counter, nothing more.
      this.messageRate.consume(client.id).then(
        () => this.onMessage(client, text),
        () => {
          if (client.ws.readyState !== client.ws.OPEN) return;
          this.deps.metrics?.socketRefusals.inc({ reason: 'messages' });
          client.ws.close(CLOSE_CODES.TOO_MANY_MESSAGES, `More than ${this.options.messagesPer10s} messages in 10 s`);
        },
      );
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

  /** True after answering TOO_MANY_SUBSCRIPTIONS, when following one more job would pass a cap. */
  private refusedOverCap(client: ClientConnection, jobId: string): boolean {
    if (client.jobs.has(jobId)) return false;
    const refusal = this.subscriptionCapReached(client);
    if (!refusal) return false;
    this.deps.metrics?.socketRefusals.inc({ reason: 'subscriptions' });
    this.sendError(client, { type: 'error', code: FAILURES.TOO_MANY_SUBSCRIPTIONS.code, jobId, message: refusal });
    return true;
  }

  private async subscribe(client: ClientConnection, jobId: string, lastSeq: number | undefined): Promise<void> {
    const owner = client.owner.id;
    if (this.refusedOverCap(client, jobId)) return;
    // Ownership first, before anything of the job is read, the same steps for a job that is someone
    // else's and for one that does not exist.
    const owned = await this.checkOwnership(client, jobId);
    if (owned === 'busy') {
      this.deps.metrics?.socketRefusals.inc({ reason: 'busy' });
      this.sendError(client, {
        type: 'error',
        code: FAILURES.UNAVAILABLE.code,
        jobId,
        message: 'The server is busy; subscribe again in a few seconds.',
      });
      return;
    }
    if (!owned) {
      this.sendError(client, { type: 'error', code: FAILURES.JOB_NOT_FOUND.code, jobId, message: 'No such job.' });
      return;
    }
    // Checked again: other subscribes of this user may have been admitted while this one was checked.
    if (this.refusedOverCap(client, jobId)) return;
    client.jobs.add(jobId);
    // Hold live messages from here on, and subscribe before reading, so nothing published during the
    // catch-up is lost: whatever is both read and received is dropped by seq.
    // The client's own view decides where this socket's stream restarts, whatever it had before.
    client.beginCatchUp(jobId).received = lastSeq ?? 0;
    await this.fanout.join('channel', progressChannel(owner, jobId), client);
    client.send({ type: 'subscribed', jobId });
    await this.catchUp(client, jobId, lastSeq, true);
    await this.tellPlace(client, jobId);
  }

  /** After a catch-up, where the job waits for an HPC slot, if it does: later changes come live. */
  private async tellPlace(client: ClientConnection, jobId: string): Promise<void> {
    const place = await this.deps.hpcQueue?.placeOf(jobId).catch((err: unknown) => {
      this.deps.log.warn({ err, jobId }, 'could not read the job’s place in the HPC queue');
      return null;
    });
    if (place) client.deliver(jobId, place);
  }

  /** Why one more subscription by id is refused for this socket's user, or null when it is not. */
  private subscriptionCapReached(client: ClientConnection): string | null {
    const { maxSubscriptionsPerSocket, maxSubscriptionsPerUser } = this.options;
    if (client.jobs.size >= maxSubscriptionsPerSocket)
      return `At most ${maxSubscriptionsPerSocket} jobs per socket; unsubscribe from finished ones or use subscribeAll.`;
    let total = 0;
    for (const socket of this.socketsOf.get(client.owner.id) ?? []) total += socket.jobs.size;
    if (total >= maxSubscriptionsPerUser)
      return `At most ${maxSubscriptionsPerUser} jobs per user over all sockets; unsubscribe from finished ones or use subscribeAll.`;
    return null;
  }

  /**
   * Whether the job is the socket owner's, within the process-wide bound on checks at once: 'busy' when
   * the process's queue or this socket's share of it is full.
   */
  private async checkOwnership(client: ClientConnection, jobId: string): Promise<boolean | 'busy'> {
    if (
      this.ownershipLimit.pendingCount >= this.options.maxQueuedOwnershipChecks ||
      client.ownershipChecks >= this.options.maxOwnershipChecksPerSocket
    )
      return 'busy';
    client.ownershipChecks++;
    try {
      return await this.ownershipLimit(() => this.isOwned(client.owner.id, jobId));
    } finally {
      client.ownershipChecks--;
    }
  }

  private async isOwned(owner: string, jobId: string): Promise<boolean> {
    this.deps.metrics?.ownershipChecks.inc();
    // Job ids name their owner: anything else is refused without a read (JobService.describeOwned
    // does the same), and what the prefix cannot tell apart (owner `al` and `al-x`) is checked below.
    if (!jobId.startsWith(`asset-${owner}-`)) return false;
    // The job's stream names its owner in every message, and only the job's own workflow and activities
    // publish there: a stream of this owner proves the job is theirs without asking Temporal, so a
    // reconnect storm (an API restart with 1,000 sockets) costs Redis reads, not 1,000 describes. A
    // closure the stream lacks is then found by the quiet-job watch once the job has been quiet.
    if ((await this.deps.jobLog.readOwner(jobId).catch(() => null)) === owner) return true;
    const job = await this.deps.jobs.describeOwned(owner, jobId);
    if (!job) return false;
    // Closed without its terminal event (terminated from the Temporal UI, or the event was lost), or
    // running again after a reset while the stream still ends with the old run's outcome: publish what
    // is missing first, so the catch-up, and every other socket, gets it with a seq.
    await this.deps.reconciler.reconcile({ jobId, owner, assetName: job.assetName, status: job.status, runId: job.description.runId });
    return true;
  }

  /**
   * Reads what a socket is missing of a job (after `afterSeq`, or the snapshot when undefined) and
   * sends it before the live messages held meanwhile. Failures are logged; the next live message
   * (which then shows a gap) or the Redis reconnect tries again.
   */
  private async catchUp(client: ClientConnection, jobId: string, afterSeq: number | undefined, rethrow = false): Promise<void> {
    client.beginCatchUp(jobId);
    try {
      const read = await this.readStream(jobId);
      const result: JobCatchUp =
        afterSeq === undefined
          ? { kind: 'snapshot', snapshot: read.snapshot ?? { seq: 0, progress: null, event: null }, reset: false }
          : catchUpFrom(read, afterSeq);
      if (result.kind === 'snapshot' && result.snapshot.event) this.watch.noteEvent(jobId, result.snapshot.event.event);
      client.finishCatchUp(jobId, result);
    } catch (err) {
      client.finishCatchUp(jobId, null);
      this.deps.log.warn({ err, jobId, owner: client.owner.id }, 'could not read a job from Redis; will retry on the next message');
      if (rethrow) throw err;
    }
  }

  /**
   * One read of a job's stream for every socket that asks before it is sent to Redis: a gap seen by all 50
   * sockets of an owner (one relay loop), or a resync of 1,000 sockets after the subscriber reconnected,
   * is one read per job, not one per socket. Sharing stops once the read is sent, so a socket never gets
   * a read older than the live messages it buffers; at most STREAM_READS_AT_ONCE are in Redis at a time.
   */
  private readStream(jobId: string): Promise<JobStreamRead> {
    let read = this.streamReads.get(jobId);
    if (!read) {
      read = this.streamReadLimit(() => {
        this.streamReads.delete(jobId);
        return this.deps.jobLog.readStream(jobId);
      });
      this.streamReads.set(jobId, read);
    }
    return read;
  }

  private async unsubscribe(client: ClientConnection, jobId: string): Promise<void> {
    if (!client.jobs.delete(jobId)) return;
    if (!client.all) client.forget(jobId);
    await this.fanout.leave('channel', progressChannel(client.owner.id, jobId), client);
  }

  private async subscribeAll(client: ClientConnection): Promise<void> {
    if (!client.all) {
      client.all = true;
      await this.fanout.join('pattern', ownerPattern(client.owner.id), client);
    }
    client.send({ type: 'subscribed', all: true });
  }

  private relay(channel: string, message: string, clients: ReadonlySet<ClientConnection>): void {
    // progress:{owner}:{jobId}; neither part may contain ':'.
    const jobId = channel.slice(channel.indexOf(':', channel.indexOf(':') + 1) + 1);
    this.watch.heard(jobId);
    const kind = readEventKind(message);
    if (kind) this.watch.noteEvent(jobId, kind);
    else this.deps.metrics?.observeRelay(message);
    let relayed = 0;
    // Encoded once for every socket, not once per socket (ws would convert a string on each send).
    const frame = clients.size > 1 ? Buffer.from(message) : undefined;
    for (const client of clients)
      if (client.open) {
        client.deliver(jobId, message, frame);
        relayed++;
      }
    if (relayed > 0) this.deps.metrics?.messagesRelayed.inc(relayed);
  }

  /** Every job a socket here follows, with its owner: what the quiet-job watch checks. */
  private *watchedJobs(): Generator<readonly [string, string]> {
    for (const client of this.clients) for (const jobId of client.streams.keys()) yield [jobId, client.owner.id];
  }

  /** After the subscriber reconnects (Redis restarted), fills every socket's gap from the replay logs. */
  private async resyncAll(): Promise<void> {
    this.deps.log.info({ sockets: this.clients.size }, 'Redis subscriber reconnected; resyncing sockets from the replay logs');
    const work: Promise<void>[] = [];
    for (const client of this.clients) {
      for (const [jobId, stream] of client.streams) if (!stream.buffer) work.push(this.catchUp(client, jobId, stream.received));
    }
    await Promise.all(work);
  }

  private sendError(client: ClientConnection, error: ErrorMessage): void {
    client.send(error);
  }

  private drop(client: ClientConnection): void {
    if (!this.clients.delete(client)) return;
    const theirs = this.socketsOf.get(client.owner.id);
    theirs?.delete(client);
    if (theirs?.size === 0) this.socketsOf.delete(client.owner.id);
    void this.messageRate.delete(client.id);
    if (client.expiryTimer) clearTimeout(client.expiryTimer);
    const owner = client.owner.id;
    const pending: Promise<void>[] = [];
    for (const jobId of client.jobs) pending.push(this.fanout.leave('channel', progressChannel(owner, jobId), client));
    if (client.all) pending.push(this.fanout.leave('pattern', ownerPattern(owner), client));
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
    this.watch.stop();
    for (const client of this.clients) client.ws.close(CLOSE_CODES.SHUTTING_DOWN, 'Server restarting; reconnect');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
