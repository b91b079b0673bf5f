import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { z } from 'zod';
import { preciseNow } from '../lib/clock.js';
import { serveCommands } from '../lib/rpc.js';
import { summarizeLatency, type LatencySummary } from '../lib/stats.js';
import { CALL_TIME_PREFIX } from './synthetic-activity.js';

/**
 * Socket clients of the progress benchmarks, in their own process so their work never runs inside
 * the process measured. One socket per subscription; each records, for every progress message that
 * carries a report-call time, the latency from that call to the message's arrival here.
 */

const Subscription = z.object({ jobId: z.string(), token: z.string().optional() });
const ConnectArgs = z.object({
  /** `api`: the real /ws protocol (bearer subprotocol, subscribe → subscribed + snapshot); `relay`: the bare relays. */
  mode: z.enum(['api', 'relay']),
  url: z.string(),
  subscriptions: z.array(Subscription),
  /** Handshakes in flight at once. */
  concurrency: z.number().int().positive().default(100),
});
const WaitArgs = z.object({ expected: z.record(z.string(), z.number()), timeoutMs: z.number() });

/** Only what latency accounting reads from a progress message; everything else is ignored. */
const ProgressFrame = z.object({
  type: z.string(),
  jobId: z.string().optional(),
  seq: z.number().optional(),
  done: z.number().optional(),
  total: z.number().optional(),
  message: z.string().optional(),
});

interface Tracked {
  jobId: string;
  ws: WebSocket;
  received: number;
  final: boolean;
  lastSeq: number;
  seqGaps: number;
}

let sockets: Tracked[] = [];
let samples = new Float64Array(1 << 16);
let sampleCount = 0;
let unparsable = 0;

/**
 * Diagnostic split of the project's latency (BENCH_TAP=1): a plain subscriber in this process records
 * when each progress message leaves Redis, so report call → Redis and Redis → socket can be told apart.
 */
let tapSamples: number[] = [];
if (process.env.BENCH_TAP === '1' && process.env.REDIS_URL) {
  const tap = new Redis(process.env.REDIS_URL);
  void tap.psubscribe('progress:*');
  tap.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    const arrived = preciseNow();
    const at = message.indexOf(`"message":"${CALL_TIME_PREFIX}`);
    if (at < 0) return;
    const start = at + 11 + CALL_TIME_PREFIX.length;
    tapSamples.push(arrived - Number(message.slice(start, message.indexOf('"', start))));
  });
}

function record(latency: number): void {
  if (sampleCount === samples.length) {
    const grown = new Float64Array(samples.length * 2);
    grown.set(samples);
    samples = grown;
  }
  samples[sampleCount++] = latency;
}

function onFrame(tracked: Tracked, data: WebSocket.RawData): void {
  const arrived = preciseNow();
  let frame: z.infer<typeof ProgressFrame>;
  try {
    frame = ProgressFrame.parse(JSON.parse(data.toString()));
  } catch {
    unparsable++;
    return;
  }
  if (frame.type === 'snapshot' && frame.seq !== undefined) tracked.lastSeq = frame.seq;
  if (frame.type !== 'progress' || !frame.message?.startsWith(CALL_TIME_PREFIX)) return;
  record(arrived - Number(frame.message.slice(CALL_TIME_PREFIX.length)));
  tracked.received++;
  if (frame.seq !== undefined) {
    if (tracked.lastSeq > 0 && frame.seq > tracked.lastSeq + 1) tracked.seqGaps += frame.seq - tracked.lastSeq - 1;
    tracked.lastSeq = frame.seq;
  }
  if (frame.done !== undefined && frame.done === frame.total) tracked.final = true;
}

function open(mode: 'api' | 'relay', url: string, sub: z.infer<typeof Subscription>): Promise<Tracked> {
  return new Promise((resolve, reject) => {
    const ws =
      mode === 'api'
        ? new WebSocket(url, ['asset-farm.v1', `bearer.${sub.token ?? ''}`], { perMessageDeflate: false })
        : new WebSocket(url);
    const tracked: Tracked = { jobId: sub.jobId, ws, received: 0, final: false, lastSeq: 0, seqGaps: 0 };
    const timer = setTimeout(() => reject(new Error(`no answer to subscribe ${sub.jobId} within 60 s`)), 60_000);
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      reject(new Error(`closed ${code} ${reason.toString()}`));
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', jobId: sub.jobId })));
    // Subscribed once the snapshot (api) or the relay's acknowledgement has arrived; then count.
    const ready = mode === 'api' ? 'snapshot' : 'subscribed';
    const onReady = (data: WebSocket.RawData) => {
      const frame = ProgressFrame.safeParse(JSON.parse(data.toString()));
      if (!frame.success) return;
      if (frame.data.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`subscribe ${sub.jobId}: ${data.toString()}`));
        return;
      }
      onFrame(tracked, data);
      if (frame.data.type !== ready) return;
      clearTimeout(timer);
      ws.off('message', onReady);
      ws.on('message', (d) => onFrame(tracked, d));
      ws.removeAllListeners('close');
      ws.removeAllListeners('error');
      ws.on('error', () => {});
      resolve(tracked);
    };
    ws.on('message', onReady);
  });
}

serveCommands({
  async connect(raw) {
    const args = ConnectArgs.parse(raw);
    const started = performance.now();
    let failed = 0;
    let firstError = '';
    let next = 0;
    const worker = async () => {
      while (next < args.subscriptions.length) {
        const sub = args.subscriptions[next++]!;
        try {
          sockets.push(await open(args.mode, args.url, sub));
        } catch (err) {
          failed++;
          firstError ||= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: args.concurrency }, worker));
    return { connected: sockets.length, failed, firstError, ms: performance.now() - started };
  },
  /** Resolves once every socket has its job's final message and expected count, or the time is up. */
  async waitDelivered(raw) {
    const { expected, timeoutMs } = WaitArgs.parse(raw);
    const deadline = performance.now() + timeoutMs;
    const complete = () => sockets.every((s) => s.final && s.received >= (expected[s.jobId] ?? 0));
    while (!complete() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return complete();
  },
  results(raw) {
    const { expected } = WaitArgs.pick({ expected: true }).parse(raw);
    let delivered = 0;
    let expectedTotal = 0;
    let finals = 0;
    let seqGaps = 0;
    for (const s of sockets) {
      delivered += s.received;
      expectedTotal += expected[s.jobId] ?? 0;
      if (s.final) finals++;
      seqGaps += s.seqGaps;
    }
    const latency: LatencySummary = summarizeLatency(samples.subarray(0, sampleCount));
    const tap = tapSamples.length ? summarizeLatency(Float64Array.from(tapSamples)) : undefined;
    return { sockets: sockets.length, delivered, expected: expectedTotal, finals, seqGaps, unparsable, latency, ...(tap ? { tap } : {}) };
  },
  async close() {
    const closing = sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.ws.readyState === WebSocket.CLOSED) return resolve();
          s.ws.once('close', () => resolve());
          s.ws.terminate();
        }),
    );
    await Promise.all(closing);
    sockets = [];
    samples = new Float64Array(1 << 16);
    sampleCount = 0;
    unparsable = 0;
    tapSamples = [];
    return true;
  },
});
