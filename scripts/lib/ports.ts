import { z } from 'zod';
import { ConfigError } from '../../common/config.js';

// Decimal digits only: Number() would also take `0x1F90` or `1e3`.
const Port = z
  .string()
  .regex(/^\d{1,5}$/)
  .transform(Number)
  .pipe(z.number().int().min(0).max(65535));

/**
 * A port from the environment for the stack's scripts, or `fallback` when unset or empty. A value that
 * is not a port stops the script with a ConfigError naming the variable, instead of starting on NaN.
 */
export function portFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const parsed = Port.safeParse(raw.trim());
  if (!parsed.success)
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a port: use a whole number from 0 to 65535, or unset it for ${fallback}.`);
  return parsed.data;
}
