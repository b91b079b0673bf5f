import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { JobLog } from '../common/job-log.js';
import { ownerPattern, progressChannel } from '../common/progress.js';
import { ClientMessage, CLOSE_CODES, type ErrorMessage } from '../common/socket-protocol.js';
import { AuthError, bearerToken, SOCKET_PROTOCOL, type JobOwner, type TokenVerifier } from './auth.js';
import type { JobService } from './job-service.js';

/** Above this many bytes queued on a socket, progress for it is coalesced to the latest per job. */
const SLOW_SOCKET_BYTES = 256 * 1024;
const PING_INTERVAL_MS = 30_000;
const MAX_FRAME_BYTES = 16 * 1024;
const MAX_BAD_MESSAGES = 20;

/** Reads the seq and type from a message the Lua script built (`{"type":"…","seq":N,…`), without parsing it all. */
const HEAD = /^\{"type":"(progress|event)","seq":(\d+),/;

/** One authenticated socket and what it follows. */
class ClientConnection {
  /** Highest seq sent per job: later duplicates (job + all-jobs subscriptions, replay overlap) are skipped. */
  readonly sentSeq = new Map<string, number>();
  /** Jobs being synced (snapshot/replay in progress): live messages wait here to be sent after it. */
  readonly syncing = new Map<string, string[]>();
  /** Latest progress per job held back while the socket is slow. */
  readonly heldProgress = new Map<string, string>();
  readonly jobs = new Set<string>();
  all = false;
  alive = true;
  badMessages = 0;

  constructor(
    readonly ws: WebSocket,
    readonly owner: JobOwner,
  ) {}

  /** Sends a pre-serialised job message unless it is old, holding progress back while the socket is slow. */
  deliver(jobId: string, raw: string): void {
    const head = HEAD.exec(raw);
    if (!head) return;
    const buffered = this.syncing.get(jobId);
    if (buffered) {
      buffered.push(raw);
      return;
    }
    const seq = Number(head[2]);
    if (seq <= (this.sentSeq.get(jobId) ?? 0)) return;
    if (head[1] === 'progress' && this.ws.bufferedAmount > SLOW_SOCKET_BYTES) {
      this.heldProgress.set(jobId, raw);
      return;
    }
    this.heldProgress.delete(jobId);
    this.sentSeq.set(jobId, seq);
    this.ws.send(raw);
  }

  /** Sends progress held back while the socket was slow, once it has drained. */
  flushHeld(): void {
    if (this.heldProgress.size === 0 || this.ws.bufferedAmount > SLOW_SOCKET_BYTES) return;
    const held = [...this.heldProgress];
    this.heldProgress.clear();
    for (const [jobId, raw] of held) this.deliver(jobId, raw);
  }

  sendJson(message: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}

/**
 * The /ws endpoint: authenticates at upgrade, checks job ownership on subscribe and relays each job's
 * Redis channel to the sockets that follow it. One Redis subscriber connection serves every socket of
 * this process; channels are reference-counted so Redis sends only what some socket needs.
 */
export class SocketHub {
  private readonly wss: WebSocketServer;
  private readonly channelClients = new Map<string, Set<ClientConnection>>();
  private readonly patternClients = new Map<string, Set<ClientConnection>>();
  private readonly clients = new Set<ClientConnection>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly flushTimer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      server: Server;
      verifier: TokenVerifier;
      subscriber: Redis;
      jobLog: JobLog;
      jobs: JobService;
      log: Logger;
    },
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      // Echo only our protocol name, never the bearer entry.
      handleProtocols: (protocols) => (protocols.has(SOCKET_PROTOCOL) ? SOCKET_PROTOCOL : false),
    });
    deps.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    deps.subscriber.on('message', (channel: string, message: string) => this.route(this.channelClients.get(channel), channel, message));
    deps.subscriber.on('pmessage', (pattern: string, channel: string, message: string) =>
      this.route(this.patternClients.get(pattern), channel, message),
    );
    this.pingTimer = setInterval(() => this.pingAll(), PING_INTERVAL_MS).unref();
    this.flushTimer = setInterval(() => {
      for (const client of this.clients) client.flushHeld();
    }, 100).unref();
  }

  /** Open sockets, for metrics and tests. */
  get socketCount(): number {
    return this.clients.size;
  }

  /** Redis channels and patterns this process is subscribed to. */
  get subscriptionCount(): number {
    return this.channelClients.size + this.patternClients.size;
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
      failure = new AuthError('AUTH_MISSING', 'Sign in first: send the token as a bearer.<jwt> subprotocol or an Authorization header.');
    else {
      try {
        owner = this.deps.verifier.verify(token);
      } catch (err) {
        failure = err instanceof AuthError ? err : new AuthError('AUTH_INVALID', 'The access token is not valid.');
      }
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!owner) {
        // Accept, then close with a specific code: browsers cannot read an HTTP status from a failed upgrade.
        ws.close(CLOSE_CODES[failure!.code], failure!.message);
        return;
      }
      this.accept(ws, owner);
    });
  }

  private accept(ws: WebSocket, owner: JobOwner): void {
    const client = new ClientConnection(ws, owner);
    this.clients.add(client);
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
        code: 'BAD_MESSAGE',
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
        code: 'UNAVAILABLE',
        message: 'Progress is unavailable right now; the page will retry.',
        ...('jobId' in parsed ? { jobId: parsed.jobId } : {}),
      });
    }
  }

  private async subscribe(client: ClientConnection, jobId: string, lastSeq: number | undefined): Promise<void> {
    const owner = client.owner.id;
    const job = await this.deps.jobs.describeOwned(owner, jobId);
    if (!job) {
      this.sendError(client, { type: 'error', code: 'JOB_NOT_FOUND', jobId, message: 'No such job.' });
      return;
    }
    if (client.jobs.has(jobId)) return;
    client.jobs.add(jobId);
    // Register for live messages first and hold them, so nothing published during the catch-up is lost.
    client.syncing.set(jobId, []);
    await this.addClient(this.channelClients, progressChannel(owner, jobId), client, 'subscribe');
    try {
      const replay = lastSeq !== undefined ? await this.deps.jobLog.readSince(jobId, lastSeq) : null;
      client.sendJson({ type: 'subscribed', jobId });
      if (replay) {
        client.sentSeq.set(jobId, lastSeq!);
        for (const message of replay) {
          client.ws.send(JSON.stringify(message));
          client.sentSeq.set(jobId, message.seq);
        }
      } else {
        const snapshot = await this.deps.jobLog.readSnapshot(jobId);
        client.sendJson({
          type: 'snapshot',
          jobId,
          seq: snapshot?.seq ?? 0,
          progress: snapshot?.progress ?? null,
          event: snapshot?.event ?? null,
        });
        client.sentSeq.set(jobId, snapshot?.seq ?? 0);
      }
    } finally {
      const held = client.syncing.get(jobId) ?? [];
      client.syncing.delete(jobId);
      for (const raw of held) client.deliver(jobId, raw);
    }
  }

  private async unsubscribe(client: ClientConnection, jobId: string): Promise<void> {
    if (!client.jobs.delete(jobId)) return;
    await this.removeClient(this.channelClients, progressChannel(client.owner.id, jobId), client, 'unsubscribe');
  }

  private async subscribeAll(client: ClientConnection): Promise<void> {
    if (!client.all) {
      client.all = true;
      await this.addClient(this.patternClients, ownerPattern(client.owner.id), client, 'psubscribe');
    }
    client.sendJson({ type: 'subscribed', all: true });
  }

  private async addClient(
    map: Map<string, Set<ClientConnection>>,
    key: string,
    client: ClientConnection,
    command: 'subscribe' | 'psubscribe',
  ): Promise<void> {
    let set = map.get(key);
    if (!set) {
      set = new Set();
      map.set(key, set);
      set.add(client);
      await this.deps.subscriber[command](key);
      return;
    }
    set.add(client);
  }

  private async removeClient(
    map: Map<string, Set<ClientConnection>>,
    key: string,
    client: ClientConnection,
    command: 'unsubscribe' | 'punsubscribe',
  ): Promise<void> {
    const set = map.get(key);
    if (!set) return;
    set.delete(client);
    if (set.size === 0) {
      map.delete(key);
      await this.deps.subscriber[command](key);
    }
  }

  private route(clients: Set<ClientConnection> | undefined, channel: string, message: string): void {
    if (!clients) return;
    const jobId = channel.slice(channel.indexOf(':', channel.indexOf(':') + 1) + 1);
    for (const client of clients) if (client.ws.readyState === WebSocket.OPEN) client.deliver(jobId, message);
  }

  private sendError(client: ClientConnection, error: ErrorMessage): void {
    client.sendJson(error);
  }

  private drop(client: ClientConnection): void {
    if (!this.clients.delete(client)) return;
    const owner = client.owner.id;
    const pending: Promise<void>[] = [];
    for (const jobId of client.jobs)
      pending.push(this.removeClient(this.channelClients, progressChannel(owner, jobId), client, 'unsubscribe'));
    if (client.all) pending.push(this.removeClient(this.patternClients, ownerPattern(owner), client, 'punsubscribe'));
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
    clearInterval(this.pingTimer);
    clearInterval(this.flushTimer);
    for (const client of this.clients) client.ws.close(CLOSE_CODES.SHUTTING_DOWN, 'Server restarting; reconnect');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
