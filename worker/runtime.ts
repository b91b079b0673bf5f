import { Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import { stdSerializers, type Logger } from 'pino';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * What of the SDK's log metadata goes into a line: the task token is dropped (a credential for
 * completing or heartbeating the task: whoever reads the log could act on it), and an `error` or
 * `failure` is serialised with its type, message and stack (a workflow's error is an Error from its
 * sandbox, which JSON writes as `{}`).
 */
export function logMetadata(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'taskToken') continue;
    const errorLike = typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
    out[key] = errorLike && (key === 'error' || key === 'err' || key === 'failure') ? stdSerializers.err(value as Error) : value;
  }
  return out;
}

/**
 * Routes the Temporal SDK's own logs (worker state, workflow and activity logs) through the component's
 * pino logger and, when given a loopback address, exports the SDK's metrics there in Prometheus format.
 */
export function installTemporalRuntime(log: Logger, sdkMetricsBindAddress?: string): void {
  const sdkLog = log.child({ source: 'temporal-sdk' });
  Runtime.install({
    ...(sdkMetricsBindAddress
      ? {
          telemetryOptions: {
            metrics: {
              metricPrefix: 'temporal_',
              prometheus: { bindAddress: sdkMetricsBindAddress, countersTotalSuffix: true, useSecondsForDurations: true },
            },
          },
        }
      : {}),
    logger: {
      log: (level: LogLevel, message: string, meta?: LogMetadata) => sdkLog[LEVELS[level]](logMetadata(meta), message),
      trace: (message: string, meta?: LogMetadata) => sdkLog.trace(logMetadata(meta), message),
      debug: (message: string, meta?: LogMetadata) => sdkLog.debug(logMetadata(meta), message),
      // The workflow bundler's webpack report is dozens of lines; "Workflow bundle created" follows at info.
      info: (message: string, meta?: LogMetadata) =>
        message.includes('\n') && message.includes('webpack')
          ? sdkLog.debug(logMetadata(meta), message)
          : sdkLog.info(logMetadata(meta), message),
      warn: (message: string, meta?: LogMetadata) => sdkLog.warn(logMetadata(meta), message),
      error: (message: string, meta?: LogMetadata) => sdkLog.error(logMetadata(meta), message),
    },
  });
}
