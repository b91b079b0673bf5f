import type { Redis } from 'ioredis';

/** Calls per command since Redis started, from INFO commandstats. */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/** Commands run between two commandCalls readings: the total and the busiest few. */
export function commandDelta(
  before: Map<string, number>,
  after: Map<string, number>,
  top = 6,
): { total: number; top: Record<string, number> } {
  const delta: [string, number][] = [];
  for (const [command, calls] of after) {
    const d = calls - (before.get(command) ?? 0);
    if (d > 0) delta.push([command, d]);
  }
  delta.sort((a, b) => b[1] - a[1]);
  return { total: delta.reduce((s, [, d]) => s + d, 0), top: Object.fromEntries(delta.slice(0, top)) };
}

/**
 * Clients connected to Redis, grouped by their CLIENT SETNAME name without its `:<pid>` suffix
 * (common/redis.ts names connections `asset-farm:<role>:<pid>`), with their subscription counts.
 */
export async function clientsByName(redis: Redis): Promise<Record<string, { connections: number; subscriptions: number }>> {
  const list = (await redis.client('LIST')) as string;
  const groups: Record<string, { connections: number; subscriptions: number }> = {};
  for (const line of list.split('\n')) {
    if (!line.trim()) continue;
    const fields = Object.fromEntries(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const name = (fields.name || '(unnamed)').replace(/:\d+$/, '');
    const group = (groups[name] ??= { connections: 0, subscriptions: 0 });
    group.connections++;
    group.subscriptions += Number(fields.sub ?? 0) + Number(fields.psub ?? 0);
  }
  return groups;
}
