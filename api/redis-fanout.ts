import type { RedisClient } from '../common/redis.js';
import type { Logger } from 'pino';

/** A Redis subscription shared by the sockets that need it; `ready` settles when Redis has confirmed it. */
interface SharedSubscription<C> {
  clients: Set<C>;
  ready: Promise<unknown>;
}

/** A channel (one job) or a pattern (all jobs of an owner). */
export type SubscriptionKind = 'channel' | 'pattern';

/**
 * One Redis subscriber connection shared by every socket of this process. Channels and patterns are
 * reference-counted: Redis is asked to SUBSCRIBE when the first socket joins and to UNSUBSCRIBE when the
 * last one leaves, so Redis sends this process only what some socket here needs.
 */
export class RedisFanout<C> {
  private readonly subscriptions: Record<SubscriptionKind, Map<string, SharedSubscription<C>>> = {
    channel: new Map(),
    pattern: new Map(),
  };
  private lost = false;

  constructor(
    private readonly deps: {
      subscriber: RedisClient;
      log: Logger;
      /** Every message Redis delivers, with the sockets of the subscription it came through. */
      onMessage: (channel: string, message: string, clients: ReadonlySet<C>) => void;
      /**
       * After the connection came back (Redis restarted): every subscription is in force again, and
       * whatever was published meanwhile is only in the replay logs.
       */
      onResubscribed: () => void;
    },
  ) {
    const { subscriber } = deps;
    subscriber.on('message', (channel: string, message: string) => this.route(this.subscriptions.channel.get(channel), channel, message));
    subscriber.on('pmessage', (pattern: string, channel: string, message: string) =>
      this.route(this.subscriptions.pattern.get(pattern), channel, message),
    );
    subscriber.on('close', () => {
      this.lost = true;
    });
    subscriber.on('ready', () => {
      if (this.lost) void this.confirmResubscribed();
      this.lost = false;
    });
  }

  /** Subscriptions this process holds in Redis: for metrics and tests. */
  counts(): { channels: number; patterns: number } {
    return { channels: this.subscriptions.channel.size, patterns: this.subscriptions.pattern.size };
  }

  /** Adds a socket to a subscription; resolves once Redis has confirmed the subscription. */
  async join(kind: SubscriptionKind, key: string, client: C): Promise<void> {
    const map = this.subscriptions[kind];
    let shared = map.get(key);
    if (!shared) {
      shared = {
        clients: new Set(),
        ready: kind === 'channel' ? this.deps.subscriber.subscribe(key) : this.deps.subscriber.psubscribe(key),
      };
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

  /** Removes a socket from a subscription; the last one out unsubscribes in Redis. */
  async leave(kind: SubscriptionKind, key: string, client: C): Promise<void> {
    const map = this.subscriptions[kind];
    const shared = map.get(key);
    if (!shared) return;
    shared.clients.delete(client);
    if (shared.clients.size === 0) {
      map.delete(key);
      await (kind === 'channel' ? this.deps.subscriber.unsubscribe(key) : this.deps.subscriber.punsubscribe(key));
    }
  }

  private route(shared: SharedSubscription<C> | undefined, channel: string, message: string): void {
    if (shared) this.deps.onMessage(channel, message, shared.clients);
  }

  private async confirmResubscribed(): Promise<void> {
    try {
      // ioredis re-sent SUBSCRIBE/PSUBSCRIBE before 'ready'; a PING behind them on the same connection
      // returns once they are in force, so reads after it cannot miss a message published in between.
      await this.deps.subscriber.ping();
    } catch (err) {
      this.deps.log.warn({ err }, 'Redis subscriber not ready for resync; gaps will be filled on the next message');
      return;
    }
    this.deps.onResubscribed();
  }
}
