import { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import type { JobMessage } from '../common/progress.js';
import { ClientConnection } from './client-connection.js';

/**
 * Stands in for a ws socket: records what is sent and lets the test set how much is queued. A real
 * socket cannot be made slow on cue here; the end-to-end suite does that with a paused TCP socket.
 */
class FakeSocket {
  readonly sent: Record<string, unknown>[] = [];
  readyState: number = WebSocket.OPEN;
  bufferedAmount = 0;
  send(raw: string): void {
    this.sent.push(JSON.parse(raw) as Record<string, unknown>);
  }
}

function raw(type: 'progress' | 'event', seq: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type, seq, jobId: 'job', owner: 'alice', ...extra });
}

function setup() {
  const socket = new FakeSocket();
  const catchUps: (number | undefined)[] = [];
  const client = new ClientConnection(
    socket as unknown as WebSocket, // the fake implements the three members ClientConnection uses
    { id: 'alice', expiresAt: Date.now() + 3_600_000 },
    (_c, _jobId, afterSeq) => catchUps.push(afterSeq),
    1000,
  );
  const seqs = () => socket.sent.map((m) => m.seq);
  return { socket, client, catchUps, seqs };
}

describe('ClientConnection', () => {
  it('passes a place in the HPC queue line straight on, outside the sequence, only for a job it shows and is not catching up', () => {
    const { client, socket, seqs } = setup();
    const place = (ahead: number) =>
      JSON.stringify({ type: 'queue', jobId: 'job', owner: 'alice', queue: 'hpc', waiting: true, ahead, etaMs: null, ts: 1 });
    client.deliver('job', place(3)); // a job this socket does not show yet
    client.beginCatchUp('job');
    client.deliver('job', place(2)); // mid catch-up: a newer place comes with the next change of the line
    client.finishCatchUp('job', { kind: 'replay', messages: [] });
    client.deliver('job', raw('progress', 1));
    client.deliver('job', place(1));
    client.deliver('job', raw('progress', 2));
    expect(socket.sent.map((m) => (m.type === 'queue' ? `ahead ${String(m.ahead)}` : m.seq))).toEqual([1, 'ahead 1', 2]);
    expect(seqs().filter((s) => s !== undefined)).toEqual([1, 2]);
    socket.bufferedAmount = 5000; // slow: places are dropped, not queued
    client.deliver('job', place(0));
    expect(socket.sent.filter((m) => m.type === 'queue')).toHaveLength(1);
  });

  it('sends each seq once and in order, dropping repeats from overlapping subscriptions', () => {
    const { client, seqs } = setup();
    client.beginCatchUp('job');
    client.finishCatchUp('job', { kind: 'replay', messages: [] });
    for (const seq of [1, 2, 2, 1, 3]) client.deliver('job', raw('progress', seq));
    expect(seqs()).toEqual([1, 2, 3]);
  });

  it('fills a gap from the replay log before anything newer, then the messages held meanwhile', () => {
    const { client, catchUps, seqs } = setup();
    client.finishCatchUp('job', null);
    client.deliver('job', raw('progress', 1));
    client.deliver('job', raw('progress', 4)); // 2 and 3 never arrived live
    client.deliver('job', raw('event', 5));
    expect(catchUps).toEqual([1]);
    expect(seqs()).toEqual([1]);
    const replay = [2, 3, 4].map((seq) => JSON.parse(raw('progress', seq)) as JobMessage);
    client.finishCatchUp('job', { kind: 'replay', messages: replay });
    expect(seqs()).toEqual([1, 2, 3, 4, 5]);
  });

  it('retries a failed catch-up on the next message instead of looping', () => {
    const { client, catchUps, seqs } = setup();
    client.beginCatchUp('job');
    client.finishCatchUp('job', { kind: 'replay', messages: [] });
    client.deliver('job', raw('progress', 3));
    client.finishCatchUp('job', null); // Redis unreachable
    expect(catchUps).toEqual([0]);
    client.deliver('job', raw('progress', 4));
    expect(catchUps).toEqual([0, 0]);
    client.finishCatchUp('job', { kind: 'replay', messages: [1, 2, 3, 4].map((seq) => JSON.parse(raw('progress', seq)) as JobMessage) });
    expect(seqs()).toEqual([1, 2, 3, 4]);
  });

  it('starts a job first seen mid-way (through subscribeAll) from its snapshot', () => {
    const { client, catchUps, socket, seqs } = setup();
    client.deliver('job', raw('progress', 7));
    expect(catchUps).toEqual([undefined]);
    client.finishCatchUp('job', { kind: 'snapshot', reset: false, snapshot: { seq: 7, progress: null, event: null } });
    client.deliver('job', raw('progress', 8));
    expect(socket.sent[0]).toMatchObject({ type: 'snapshot', seq: 7 });
    expect(seqs()).toEqual([7, 8]);
  });

  it('on a slow socket keeps only the latest progress, sends it before the next event, and never holds events', () => {
    const { client, socket, seqs } = setup();
    client.finishCatchUp('job', null);
    client.deliver('job', raw('progress', 1));
    socket.bufferedAmount = 5000;
    for (const seq of [2, 3, 4]) client.deliver('job', raw('progress', seq));
    client.flushHeld(); // still slow: nothing
    expect(seqs()).toEqual([1]);
    client.deliver('job', raw('event', 5));
    expect(seqs()).toEqual([1, 4, 5]);
    client.deliver('job', raw('progress', 6));
    client.deliver('job', raw('progress', 7));
    socket.bufferedAmount = 0;
    client.flushHeld();
    expect(seqs()).toEqual([1, 4, 5, 7]);
    expect(client.holdsProgress).toBe(false);
  });
});
