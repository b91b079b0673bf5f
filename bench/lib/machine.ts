import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/config.js';

/** Facts about the machine and software a run measured, recorded beside every figure. */
export interface MachineFacts {
  host: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  loadAverage1m: number;
  kernel: string;
  node: string;
  redis: string;
  temporalCli: string;
  packages: Record<string, string>;
}

function versionOf(pkg: string): string {
  try {
    // Read from node_modules directly: packages whose "exports" omit package.json cannot be required for it.
    const manifest = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string };
    return manifest.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function commandVersion(command: string | null, args: string[]): string {
  if (!command) return 'not found';
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0] ?? '';
  } catch {
    return 'unknown';
  }
}

export function machineFacts(binaries: { redisServer: string | null; temporalCli: string | null }): MachineFacts {
  const cpus = os.cpus();
  return {
    host: os.hostname(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    loadAverage1m: Math.round(os.loadavg()[0]! * 100) / 100,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: commandVersion(binaries.redisServer, ['--version']),
    temporalCli: commandVersion(binaries.temporalCli, ['--version']),
    packages: Object.fromEntries(
      ['@temporalio/worker', 'ioredis', 'ws', 'bullmq', '@gltf-transform/core', 'meshoptimizer', 'gltfpack'].map((p) => [p, versionOf(p)]),
    ),
  };
}
