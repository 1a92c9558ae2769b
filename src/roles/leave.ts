import type { BusConnection } from '../bus/connection.js';
import type { HeartbeatPublisher } from '../health/heartbeat.js';

/**
 * How a role leaves within `timeoutMs`: it stops reacting to (re)connections,
 * stops judging (`beforeLastBeat`: a sentinel that heard its own last heartbeat
 * would call itself missing on its way out), sends a last heartbeat
 * (`stopping`) flushed for at most a quarter of the time, stops its own parts
 * (`stopParts`), and drains the bus connection in what is left (never less
 * than 100 ms).
 */
export async function leave(
  timeoutMs: number,
  bus: BusConnection,
  heartbeat: HeartbeatPublisher,
  stopParts: () => Promise<unknown>,
  beforeLastBeat?: () => void,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  bus.removeAllListeners('connect');
  bus.removeAllListeners('reconnect');
  beforeLastBeat?.();
  await heartbeat.stop(timeoutMs / 4);
  await Promise.all([stopParts(), bus.close(Math.max(100, deadline - performance.now()))]);
}
