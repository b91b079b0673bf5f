import { WebSocket } from 'ws';
import type { JobCatchUp } from '../common/job-log.js';
import type { ServerMessage } from '../common/socket-protocol.js';
import { readPublishedHead } from '../common/redis-scripts/published-message.js';
import type { JobOwner } from './auth.js';

/** Above this many bytes queued on a socket, progress for it is coalesced to the latest per job. */
export const SLOW_SOCKET_BYTES = 256 * 1024;

/** What one socket has of one job's stream. */
export interface JobStream {
  /** Highest seq taken from Redis (live or replayed) for this socket: the next one must be received + 1. */
  received: number;
  /** Live messages that arrived while a catch-up was being read; processed in order after it. Null when none runs. */
  buffer: string[] | null;
  /** Latest progress held back while the socket is slow. */
  held: string | null;
}

/**
 * One authenticated socket and the job streams it follows. Guarantees, per job: messages go out in
 * seq order, never twice, and a gap in what Redis delivered (a missed PUBLISH, a Redis restart) is
 * filled from the job's replay log before anything newer is sent. The only messages ever skipped are
 * progress messages superseded while the socket is slow.
 */
let nextConnectionId = 0;

export class ClientConnection {
  /** Tells this process's sockets apart (rate limiter keys). */
  readonly id = `socket-${++nextConnectionId}`;
  /** Ownership checks of this socket's subscribes running or queued. */
  ownershipChecks = 0;
  readonly streams = new Map<string, JobStream>();
  /** Jobs the client subscribed to by id. */
  readonly jobs = new Set<string>();
  all = false;
  alive = true;
  badMessages = 0;
  expiryTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly owner: JobOwner,
    /** Starts a catch-up of a job after `afterSeq` (undefined: from the snapshot); called on a gap. */
    private readonly requestCatchUp: (client: ClientConnection, jobId: string, afterSeq: number | undefined) => void,
    private readonly slowBytes = SLOW_SOCKET_BYTES,
    /** Called for each progress message dropped because a newer one superseded it (for metrics). */
    private readonly onCoalesced?: () => void,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Handles one live message from Redis for a job this socket follows. `frame` is the same message
   * already encoded, shared by every socket it goes to, so fan-out does not re-encode it per socket.
   */
  deliver(jobId: string, raw: string, frame?: Buffer): void {
    const head = readPublishedHead(raw);
    if (!head) {
      this.deliverPlace(jobId, raw, frame);
      return;
    }
    const { seq } = head;
    let stream = this.streams.get(jobId);
    if (!stream) {
      // A job first seen through subscribeAll: a client joining mid-job needs the state so far first.
      stream = { received: 0, buffer: null, held: null };
      this.streams.set(jobId, stream);
      if (seq > 1) {
        stream.buffer = [raw];
        this.requestCatchUp(this, jobId, undefined);
        return;
      }
    }
    if (stream.buffer) {
      stream.buffer.push(raw);
      return;
    }
    if (seq <= stream.received) return;
    if (seq > stream.received + 1) {
      stream.buffer = [raw];
      this.requestCatchUp(this, jobId, stream.received);
      return;
    }
    stream.received = seq;
    this.output(stream, head.type, raw, frame);
  }

  /**
   * A job's place in the HPC queue line (a `queue` frame, common/hpc-queue.ts): outside the job's
   * sequence, so it goes out as it comes, to a socket that already shows the job, and is simply dropped
   * while that socket is slow or catching up (the next change of the line brings a newer one).
   */
  private deliverPlace(jobId: string, raw: string, frame?: Buffer): void {
    if (!raw.startsWith('{"type":"queue",')) return;
    const stream = this.streams.get(jobId);
    if (!stream || stream.buffer || this.ws.bufferedAmount > this.slowBytes) return;
    this.sendRaw(frame ?? raw);
  }

  /** Marks a catch-up as running for a job: live messages wait in its buffer. */
  beginCatchUp(jobId: string): JobStream {
    let stream = this.streams.get(jobId);
    if (!stream) {
      stream = { received: 0, buffer: null, held: null };
      this.streams.set(jobId, stream);
    }
    stream.buffer ??= [];
    return stream;
  }

  /** Sends what a catch-up read, then the live messages that arrived meanwhile. */
  finishCatchUp(jobId: string, result: JobCatchUp | null): void {
    const stream = this.streams.get(jobId);
    if (!stream) return;
    if (result?.kind === 'snapshot') {
      const { snapshot } = result;
      stream.held = null;
      stream.received = snapshot.seq;
      this.send({
        type: 'snapshot',
        jobId,
        seq: snapshot.seq,
        progress: snapshot.progress,
        event: snapshot.event,
        ...(result.reset ? { reset: true as const } : {}),
      });
    } else if (result?.kind === 'replay') {
      for (const message of result.messages) {
        if (message.seq <= stream.received) continue;
        stream.received = message.seq;
        this.output(stream, message.type, JSON.stringify(message));
      }
    }
    const buffered = stream.buffer ?? [];
    stream.buffer = null;
    // When the read failed (result null), what was buffered is not replayed: the gap it starts with
    // would only ask for the same read again. The next live message or Redis reconnect retries it.
    if (result) for (const raw of buffered) this.deliver(jobId, raw);
  }

  /** Stops following a job. */
  forget(jobId: string): void {
    this.streams.delete(jobId);
  }

  /** Sends progress held back while the socket was slow, once it has drained. */
  flushHeld(): void {
    if (this.ws.bufferedAmount > this.slowBytes) return;
    for (const stream of this.streams.values()) {
      if (stream.held === null) continue;
      const raw = stream.held;
      stream.held = null;
      this.sendRaw(raw);
    }
  }

  get holdsProgress(): boolean {
    for (const stream of this.streams.values()) if (stream.held !== null) return true;
    return false;
  }

  send(message: ServerMessage): void {
    this.sendRaw(JSON.stringify(message));
  }

  private output(stream: JobStream, type: 'progress' | 'event', raw: string, frame?: Buffer): void {
    if (type === 'progress' && this.ws.bufferedAmount > this.slowBytes) {
      if (stream.held !== null) this.onCoalesced?.();
      stream.held = raw;
      return;
    }
    if (stream.held !== null && type === 'progress') this.onCoalesced?.();
    // A newer progress supersedes the held one; an event goes after the progress it followed, so the
    // held one goes first (one per job: bounded).
    if (stream.held !== null && type === 'event') this.sendRaw(stream.held);
    stream.held = null;
    this.sendRaw(frame ?? raw);
  }

  private sendRaw(data: string | Buffer): void {
    // A Buffer goes out as is; `binary: false` keeps it a text frame, as the protocol's JSON is.
    if (this.open) this.ws.send(data, { binary: false });
  }
}
