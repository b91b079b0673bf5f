import { pino, type Logger } from 'pino';

/** Structured JSON logger for a component; secrets are redacted wherever they might appear. */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: component,
    level,
    redact: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'JWT_SECRET'],
    base: { component },
  });
}
