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

/** Query parameters whose value is a credential: `token`, `access_token`, `id_token`, `jwt`, any `*token*`, `signature`, `key`. */
const SECRET_PARAM = /token|^jwt$|^signature$|^key$|^code$|^x-amz-signature$|^x-amz-credential$/i;

/**
 * A request URL fit for a log line: the value of every credential-like query parameter becomes
 * [Redacted], whether or not the parameter is one the API reads. Anything unparseable is cut at '?'.
 */
export function redactUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  try {
    const params = new URLSearchParams(url.slice(query + 1));
    let changed = false;
    for (const key of new Set(params.keys())) {
      if (SECRET_PARAM.test(key)) {
        params.set(key, '[Redacted]');
        changed = true;
      }
    }
    return changed ? `${url.slice(0, query)}?${params.toString().replaceAll('%5BRedacted%5D', '[Redacted]')}` : url;
  } catch {
    return `${url.slice(0, query)}?[Redacted]`;
  }
}

/** Structured JSON logger for a component; secrets are redacted wherever they might appear. */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  return pino({ name: component, level, redact: REDACTED_PATHS, base: { component } }, destination);
}
