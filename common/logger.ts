import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Where secrets can appear in a log line: tokens and authorization values at the top level or one level
 * down, and the request headers pino-http logs with every request (`req.headers`): the bearer token, the
 * WebSocket token (a `bearer.<jwt>` subprotocol) and cookies.
 */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'JWT_SECRET',
];

/** Structured JSON logger for a component; secrets are redacted wherever they might appear. */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  return pino({ name: component, level, redact: REDACTED_PATHS, base: { component } }, destination);
}
