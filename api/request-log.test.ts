import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../common/logger.js';
import { requestLog } from './request-log.js';

const SEED = 24_12;

function capture(): Writable & { lines(): Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(stream, {
    lines: () =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  });
}

/** An app with the API's request logging and two routes, on a free loopback port. */
async function withApp<T>(level: string, run: (url: string, sink: ReturnType<typeof capture>) => Promise<T>): Promise<T> {
  const sink = capture();
  const app = express();
  app.use(requestLog(createLogger('api', level, sink)));
  app.get('/api/jobs/:id', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    return await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, sink);
  } finally {
    server.close();
  }
}

const tokenValue = fc.stringMatching(/^[A-Za-z0-9_\-.]{8,60}$/);
const secretParam = fc.constantFrom('token', 'access_token', 'id_token', 'TOKEN', 'refreshToken', 'jwt', 'signature');
const plainParam = fc.constantFrom('page', 'limit', 'state', 'preset', 'q');

describe('request log lines', () => {
  it('are one short line per request at info: method, route, status, time, job id, and no headers', async () => {
    await withApp('info', async (url, sink) => {
      const res = await fetch(`${url}/api/jobs/asset-alice-42?token=s3cr3t-value`, { headers: { authorization: 'Bearer abc.def.ghi' } });
      expect(res.status).toBe(200);
      await fetch(`${url}/healthz`);
      await expect.poll(() => sink.lines().length).toBe(1);
      const [line] = sink.lines();
      expect(line).toMatchObject({ level: 30, msg: expect.stringMatching(/^GET \/api\/jobs\/:id 200 \d+ms$/) });
      expect(line).toMatchObject({ method: 'GET', route: '/api/jobs/:id', status: 200, jobId: 'asset-alice-42' });
      expect(typeof line!.responseTime).toBe('number');
      const text = JSON.stringify(line);
      expect(text).not.toContain('s3cr3t-value');
      expect(text).not.toContain('abc.def.ghi');
      expect(text).not.toMatch(/headers|user-agent/);
    });
  });

  it('carry the headers at debug, with credentials redacted', async () => {
    await withApp('debug', async (url, sink) => {
      await fetch(`${url}/api/jobs/j1?access_token=qwerty123`, { headers: { authorization: 'Bearer abc.def.ghi', 'x-trace': 'seen' } });
      await expect.poll(() => sink.lines().length).toBe(1);
      const line = sink.lines()[0] as { req: { url: string; headers: Record<string, string> }; res: { headers: object } };
      expect(line.req.headers['x-trace']).toBe('seen');
      expect(line.req.headers.authorization).toBe('[Redacted]');
      expect(line.req.url).toBe('/api/jobs/j1?access_token=[Redacted]');
      expect(line.res.headers).toBeDefined();
      expect(JSON.stringify(line)).not.toContain('qwerty123');
    });
  });

  it('never contain a credential from the query string, whatever its name, place or value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(plainParam, fc.stringMatching(/^[a-z0-9]{1,12}$/)), { maxLength: 3 }),
        secretParam,
        tokenValue,
        fc.nat(3),
        (plain, name, value, at) => {
          const params = plain.map(([k, v]) => `${k}=${v}`);
          params.splice(Math.min(at, params.length), 0, `${name}=${encodeURIComponent(value)}`);
          const logged = redactUrl(`/api/jobs/x?${params.join('&')}`);
          expect(logged).not.toContain(encodeURIComponent(value));
          expect(logged).toContain(`${name}=[Redacted]`);
          for (const [k, v] of plain) expect(logged).toContain(`${k}=${v}`);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
    expect(redactUrl('/api/jobs?page=2')).toBe('/api/jobs?page=2');
    expect(redactUrl('/ws')).toBe('/ws');
  });
});
