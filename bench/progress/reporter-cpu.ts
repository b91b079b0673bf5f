/**
 * Diagnostic (not part of `npm run bench`): the HPC worker's own CPU per progress update, without Temporal.
 * N ProgressReporters on a real JobLog and Redis report at 10 Hz for a window; prints CPU µs per update.
 *   node --import tsx bench/progress/reporter-cpu.ts [jobs=1000] [seconds=10]
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { JobLog } from '../../common/job-log.js';
import { ProgressReporter } from '../../activities/progress-reporter.js';
import { freePort } from '../../common/net.js';
import { preciseNow } from '../lib/clock.js';

const roundTrips: number[] = [];

const jobs = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 10);
const port = await freePort();
const redisProc = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], {
  stdio: 'ignore',
});
const redis = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 });
redis.on('error', () => undefined);
await new Promise((r) => redis.once('ready', r));
const jobLog = new JobLog(redis, { ttlSeconds: 3600 });
let heartbeats = 0;
const reporters = Array.from({ length: jobs }, (_, i) => {
  const r = new ProgressReporter({
    jobId: `asset-owner-${i % 10}-00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    owner: `owner-${i % 10}`,
    stages: ['synthetic'],
    attempt: 1,
    jobLog,
    heartbeat: () => void heartbeats++,
    heartbeatIntervalMs: 10_000,
    maxRate: 10,
    now: preciseNow,
    onPublished: (_seq, ts) => void roundTrips.push(preciseNow() - ts),
  });
  r.startStage('synthetic', seconds * 10, 'updates');
  return r;
});
await Promise.all(reporters.map((r) => r.flush()));
const publishedBefore = reporters.reduce((s, r) => s + r.published, 0);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(
  reporters.map(
    (r, i) =>
      new Promise<void>((resolve) => {
        let calls = 0;
        setTimeout(
          () => {
            const timer = setInterval(() => {
              calls++;
              if (calls < seconds * 10) r.update(calls, `t:${performance.now()}`);
              else {
                r.finishStage('done');
                clearInterval(timer);
                resolve();
              }
            }, 100);
          },
          ((i * 0.618) % 1) * 100,
        );
      }),
  ),
);
await Promise.all(reporters.map((r) => r.flush()));
const cpu = process.cpuUsage(cpu0);
const published = reporters.reduce((s, r) => s + r.published, 0) - publishedBefore;
const dropped = reporters.reduce((s, r) => s + r.dropped, 0);
const wall = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    jobs,
    seconds: wall.toFixed(1),
    published,
    dropped,
    cores: ((cpu.user + cpu.system) / 1e6 / wall).toFixed(3),
    usPerUpdate: ((cpu.user + cpu.system) / published).toFixed(1),
    roundTripMs: ((s) => ({ p50: s[Math.floor(s.length * 0.5)]?.toFixed(2), p99: s[Math.floor(s.length * 0.99)]?.toFixed(2) }))(roundTrips.sort((a, b) => a - b)),
  }),
);
redis.disconnect();
redisProc.kill();
