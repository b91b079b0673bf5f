import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP relay in front of the API that counts the bytes clients send and, once they pass a threshold,
 * drops the network: `cut` closes every open connection at once (a Wi-Fi drop), `stall` stops relaying
 * what the client sends on the connection that crossed it (a dead link that never closes, for a test to
 * kill or reload the client). New connections after the fault go through normally.
 */
export class NetworkFault {
  private readonly server: net.Server;
  private readonly open = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly stalled = new WeakSet<net.Socket>();
  private threshold = Infinity;
  private mode: 'cut' | 'stall' = 'cut';
  /** Bytes clients sent through the relay (to the API), all connections together. */
  sent = 0;
  /** How many times the fault has happened. */
  faults = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.relay(client));
  }

  static async start(targetUrl: string): Promise<NetworkFault> {
    const { hostname, port } = new URL(targetUrl);
    const fault = new NetworkFault({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve) => fault.server.listen(0, '127.0.0.1', resolve));
    return fault;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops the network once clients have sent `afterBytes` more bytes from now. */
  arm(mode: 'cut' | 'stall', afterBytes: number): void {
    this.mode = mode;
    this.threshold = this.sent + afterBytes;
  }

  /** Starts counting bytes and faults from zero, with no fault armed. */
  reset(): void {
    this.sent = 0;
    this.faults = 0;
    this.threshold = Infinity;
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.open.add(pair);
    const close = () => {
      this.open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A client gone ends its upstream after what was written to it (end flushes; destroy would not).
    client
      .on('error', () => undefined)
      .on('close', () => {
        this.open.delete(pair);
        upstream.end();
      });
    upstream.on('error', close).on('close', close);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (this.stalled.has(client)) return;
      const room = this.threshold - this.sent;
      if (chunk.length < room) {
        this.sent += chunk.length;
        upstream.write(chunk);
        return;
      }
      // The fault: what fits under the threshold goes through, the rest never arrives.
      this.sent += Math.max(0, room);
      this.threshold = Infinity;
      this.faults++;
      if (this.mode === 'stall') {
        if (room > 0) upstream.write(chunk.subarray(0, room));
        this.stalled.add(client);
        return;
      }
      // The bytes before the cut reach the API (end flushes them), then every connection is gone.
      if (room > 0) upstream.write(chunk.subarray(0, room));
      client.destroy();
      for (const each of [...this.open])
        if (each !== pair) {
          each.client.destroy();
          each.upstream.destroy();
        }
    });
  }

  /** Closes every connection open now (a stalled link finally giving up). */
  dropAll(): void {
    for (const { client, upstream } of this.open) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Connections the relay holds open now. */
  get connections(): number {
    return this.open.size;
  }

  async stop(): Promise<void> {
    for (const { client, upstream } of this.open) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
