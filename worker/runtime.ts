import { Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from 'pino';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

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
      log: (level: LogLevel, message: string, meta?: LogMetadata) => sdkLog[LEVELS[level]](meta ?? {}, message),
      trace: (message: string, meta?: LogMetadata) => sdkLog.trace(meta ?? {}, message),
      debug: (message: string, meta?: LogMetadata) => sdkLog.debug(meta ?? {}, message),
      info: (message: string, meta?: LogMetadata) => sdkLog.info(meta ?? {}, message),
      warn: (message: string, meta?: LogMetadata) => sdkLog.warn(meta ?? {}, message),
      error: (message: string, meta?: LogMetadata) => sdkLog.error(meta ?? {}, message),
    },
  });
}
