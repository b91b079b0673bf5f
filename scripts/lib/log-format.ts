const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name', 'component', 'v']);

/** Turns a pino JSON line into `LEVEL message key=value…` for the terminal; other lines pass through. */
export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (typeof entry.msg !== 'string' && typeof entry.level !== 'number') return line;
    const level = LEVELS[entry.level as number] ?? String(entry.level);
    const extras = Object.entries(entry)
      .filter(([k]) => !SKIP.has(k))
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return [level.padEnd(5), entry.msg ?? '', ...extras].join(' ');
  } catch {
    return line;
  }
}
