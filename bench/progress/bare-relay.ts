import { once } from 'node:events';
import http from 'node:http';
import { Redis } from 'ioredis';
import { QueueEvents } from 'bullmq';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { serveCommands } from '../lib/rpc.js';

/**
 * The floor and the peer relay of the progress benchmarks: plain ws sockets, no auth, no schema.
 *   --source redis   one ioredis subscriber, SUBSCRIBE per job channel, message forwarded as is (the floor)
 *   --source bullmq  a BullMQ QueueEvents listener, each `progress` event sent as JSON (the peer)
 * Clients send {"type":"subscribe","jobId":"…"} and get {"type":"subscribed"} back.
 */
const Args = z.object({
  source: z.enum(['redis', 'bullmq']),
  redisUrl: z.string(),
  queue: z.string().default('bench-progress'),
  channelPrefix: z.string().default('floor:'),
});
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const args = Args.parse({ source: flag('source'), redisUrl: flag('redis-url'), queue: flag('queue'), channelPrefix: flag('prefix') });
const Subscribe = z.object({ type: z.literal('subscribe'), jobId: z.string() });

const byJob = new Map<string, Set<WebSocket>>();
const server = http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false });
let subscriber: Redis | null = null;
let events: QueueEvents | null = null;

function forward(jobId: string, message: string): void {
  const sockets = byJob.get(jobId);
  if (!sockets) return;
  for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(message);
}

if (args.source === 'redis') {
  subscriber = new Redis(args.redisUrl);
  subscriber.on('message', (channel: string, message: string) => forward(channel.slice(args.channelPrefix.length), message));
} else {
  events = new QueueEvents(args.queue, { connection: { url: args.redisUrl } });
  events.on('progress', ({ jobId, data }) => {
    const progress = typeof data === 'object' && data !== null ? data : { value: data };
    forward(jobId, JSON.stringify({ type: 'progress', jobId, ...progress }));
  });
}

wss.on('connection', (ws) => {
  const jobs: string[] = [];
  ws.on('message', (data) => {
    const request = Subscribe.safeParse(JSON.parse(data.toString()));
    if (!request.success) return;
    const { jobId } = request.data;
    let set = byJob.get(jobId);
    const done = () => ws.send(JSON.stringify({ type: 'subscribed', jobId }));
    if (!set) {
      set = new Set();
      byJob.set(jobId, set);
      set.add(ws);
      jobs.push(jobId);
      if (subscriber) void subscriber.subscribe(`${args.channelPrefix}${jobId}`).then(done);
      else done();
      return;
    }
    set.add(ws);
    jobs.push(jobId);
    done();
  });
  ws.on('close', () => {
    for (const jobId of jobs) {
      const set = byJob.get(jobId);
      set?.delete(ws);
      if (set && set.size === 0) {
        byJob.delete(jobId);
        void subscriber?.unsubscribe(`${args.channelPrefix}${jobId}`);
      }
    }
  });
});

await events?.waitUntilReady();
// Clients subscribe only once the connection is ready: a SUBSCRIBE sent while ioredis is still
// handshaking is lost (ioredis#2037; the project's subscribers skip the ready check, common/redis.ts).
if (subscriber && subscriber.status !== 'ready') await once(subscriber, 'ready');
const port = await new Promise<number>((resolve) =>
  server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
);

serveCommands({
  address: () => ({ url: `ws://127.0.0.1:${port}`, pid: process.pid }),
  sockets: () => wss.clients.size,
});
