import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { pinoHttp } from 'pino-http';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

/** A stream that keeps what the logger writes. */
function capture(): Writable & { text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(stream, { text: () => text });
}

describe('createLogger', () => {
  it('keeps the tokens of a logged request out of the log, as the API logs every request', async () => {
    const sink = capture();
    const app = express();
    app.use(pinoHttp({ logger: createLogger('api', 'info', sink) }));
    app.get('/api/jobs', (_req, res) => {
      res.json([]);
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/jobs`, {
        headers: { authorization: `Bearer ${jwt}`, cookie: `session=${jwt}`, 'sec-websocket-protocol': `asset-farm, bearer.${jwt}` },
      });
      expect(res.status).toBe(200);
      await expect.poll(() => sink.text()).toContain('request completed');
    } finally {
      server.close();
    }
    const line = JSON.parse(sink.text().trim().split('\n').at(-1)!) as { req: { url: string; headers: Record<string, string> } };
    expect(line.req.url).toBe('/api/jobs');
    expect(line.req.headers).toMatchObject({ authorization: '[Redacted]', cookie: '[Redacted]', 'sec-websocket-protocol': '[Redacted]' });
    expect(sink.text()).not.toContain(jwt);
  });

  it('redacts a token passed as a field', () => {
    const sink = capture();
    createLogger('worker', 'info', sink).info({ token: 'secret-1', session: { token: 'secret-2' } }, 'signed in');
    expect(sink.text()).toContain('signed in');
    expect(sink.text()).not.toMatch(/secret-[12]/);
  });
});
