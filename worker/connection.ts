import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';

/**
 * Connects to the Temporal frontend, waiting for it while it starts (as it does under `npm start`,
 * where every process comes up at once). Gives up after `timeoutMs` with a message that says what to check.
 */
export async function connectToTemporal(address: string, log: Logger, timeoutMs = 120_000): Promise<NativeConnection> {
  const deadline = Date.now() + timeoutMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect({ address });
    } catch (err) {
      if (Date.now() + delay > deadline) {
        throw new Error(
          `Could not reach Temporal at ${address} for ${Math.round(timeoutMs / 1000)} s (${(err as Error).message}). ` +
            'Start it with `npm run temporal`, or set TEMPORAL_ADDRESS to a running server.',
        );
      }
      if (attempt === 1 || attempt % 10 === 0) log.info({ address }, 'Waiting for Temporal');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}
