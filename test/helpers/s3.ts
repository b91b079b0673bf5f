import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startVersitygw, type RunningS3Server } from '../../scripts/lib/versitygw-server.js';
import { freePort } from '../../scripts/lib/wait.js';
import { inject } from 'vitest';

/**
 * A throwaway real S3-compatible server (versitygw) on a free loopback port with one bucket and fresh
 * random keys; `dir` is the folder it stores objects in (one file per object), and stop() removes it.
 */
export async function startTestS3(): Promise<RunningS3Server & { dir: string }> {
  const provisioned = inject('versitygwPath');
  if (provisioned && !process.env.VERSITYGW_PATH) process.env.VERSITYGW_PATH = provisioned;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-s3-'));
  const server = await startVersitygw({
    port: await freePort(),
    dir,
    bucket: 'asset-farm-test',
    accessKey: `test${randomBytes(8).toString('hex')}`,
    secretKey: randomBytes(24).toString('hex'),
  });
  return {
    ...server,
    dir,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
