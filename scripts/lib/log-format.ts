import { prettyFactory } from 'pino-pretty';

/**
 * pino-pretty (pino's own prettifier) renders the components' JSON lines for the `npm start` terminal:
 * one line each, `HH:MM:ss LEVEL message key=value…` after the process tag. Only the terminal view
 * changes; every process still writes JSON, which is what production collects.
 */
const FIELDS_IN_TAG = 'pid,hostname,name,component';
const plain = prettyFactory({ colorize: false, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: FIELDS_IN_TAG });
const coloured = prettyFactory({ colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss', ignore: FIELDS_IN_TAG });

/** A pino JSON line made readable; any other line (Redis, Temporal, a stack trace) passes through. */
export function formatLogLine(line: string, colour = false): string {
  if (!line.startsWith('{')) return line;
  return (colour ? coloured : plain)(line).replace(/\r?\n$/, '');
}
