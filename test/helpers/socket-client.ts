import WebSocket from 'ws';

/** A /ws client for tests: records every message and waits for the ones a test expects. */
export class TestSocket {
  readonly messages: Record<string, unknown>[] = [];
  private waiters: { predicate: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;
  readonly opened: Promise<void>;

  constructor(readonly ws: WebSocket) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      }),
    );
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Record<string, unknown>;
      this.messages.push(message);
      for (const waiter of [...this.waiters]) {
        if (waiter.predicate(message)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    });
  }

  /** Opens a socket with the token sent the way browsers do: as a `bearer.<jwt>` subprotocol. */
  static connect(url: string, token: string | null, protocols = ['asset-farm.v1']): TestSocket {
    return new TestSocket(new WebSocket(url, token ? [...protocols, `bearer.${token}`] : protocols));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (already received or coming) that matches, or rejects after timeoutMs. */
  waitFor(
    predicate: (m: Record<string, unknown>) => boolean,
    timeoutMs = 60_000,
    what = 'a matching message',
  ): Promise<Record<string, unknown>> {
    const seen = this.messages.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Timed out waiting for ${what}; got ${JSON.stringify(this.messages).slice(0, 2000)}`)),
        timeoutMs,
      );
      this.waiters.push({
        predicate,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}
