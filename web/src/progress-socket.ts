import { CLOSE_CODES, type ClientMessage } from '../../common/socket-protocol.js';
import { ServerFrame } from './server-frames.js';

export type ConnectionState = { kind: 'connecting' } | { kind: 'online' } | { kind: 'offline'; retryInMs: number; reason: string };

export interface ProgressSocketOptions {
  token: string;
  onFrame(frame: ServerFrame): void;
  onState(state: ConnectionState): void;
  /** The server refused the token (close 4401/4403/4419): the artist must sign in again. */
  onAuthRefused(message: string): void;
  /** Called on every (re)connect once subscribeAll is sent: resubscribe jobs with their lastSeq here. */
  onOpen(): void;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const AUTH_CLOSE_CODES: ReadonlySet<number> = new Set([CLOSE_CODES.AUTH_MISSING, CLOSE_CODES.AUTH_INVALID, CLOSE_CODES.AUTH_EXPIRED]);

/**
 * The page's one /ws connection (docs/PROTOCOL.md). Follows all of the artist's jobs with subscribeAll and
 * reconnects by itself with exponential backoff and jitter, so a restarting API is not stampeded.
 */
export class ProgressSocket {
  private ws: WebSocket | null = null;
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly onOnline = () => this.reconnectNow();

  constructor(private readonly options: ProgressSocketOptions) {}

  start(): void {
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'signed out');
    this.ws = null;
  }

  send(message: ClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** Skips the backoff wait (the browser says the network is back). */
  reconnectNow(): void {
    if (this.stopped || this.ws) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  private connect(): void {
    this.options.onState({ kind: 'connecting' });
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    const ws = new WebSocket(url, ['asset-farm.v1', `bearer.${this.options.token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.send({ type: 'subscribeAll' });
      this.options.onOpen();
    };
    ws.onmessage = (event) => {
      let frame: ServerFrame;
      try {
        frame = ServerFrame.parse(JSON.parse(String(event.data)));
      } catch (err) {
        console.warn('asset-farm: ignored a socket frame the page does not understand', err);
        return;
      }
      if (frame.type === 'subscribed' && frame.all) {
        this.retries = 0;
        this.options.onState({ kind: 'online' });
      }
      this.options.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.has(event.code)) {
        this.options.onAuthRefused(event.reason || 'Your session has ended; sign in again.');
        return;
      }
      const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this.retries);
      const retryInMs = Math.round(base / 2 + (Math.random() * base) / 2);
      this.retries++;
      const reason =
        event.code === CLOSE_CODES.SHUTTING_DOWN
          ? 'The server is restarting.'
          : navigator.onLine
            ? 'Lost the connection to the server.'
            : 'Your computer is offline.';
      this.options.onState({ kind: 'offline', retryInMs, reason });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, retryInMs);
    };
  }
}
