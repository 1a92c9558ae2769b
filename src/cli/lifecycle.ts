import type { Logger } from 'pino';
import { EXIT } from './exit-codes.js';

/**
 * From SIGTERM to exit: everything is drained and closed within this, and
 * the process exits at it whatever is still pending, half a second inside
 * the 2 s that Docker, Kubernetes and the README promise.
 */
export const SHUTDOWN_DEADLINE = 1500; // 1.5 s

export interface Role {
  start(): Promise<void>;
  close(timeoutMs: number): Promise<void>;
}

/**
 * Runs a role until SIGTERM or SIGINT, then closes it within the deadline (a
 * second signal, or the deadline, exits at once). `onHangup`, when given, is
 * what SIGHUP does; without it SIGHUP is ignored rather than fatal.
 */
export async function runUntilSignalled(role: Role, log: Logger, onHangup?: () => void): Promise<number> {
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // Registered before start: SIGHUP's default kills.
  const hangup = onHangup ?? (() => undefined);
  process.on('SIGHUP', hangup);
  await role.start();

  const signal = await stopped;
  process.off('SIGHUP', hangup);
  process.on('SIGHUP', () => undefined);
  log.info({ signal }, 'shutting down');
  const force = () => process.exit(EXIT.OK);
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  setTimeout(force, SHUTDOWN_DEADLINE).unref();

  await role.close(SHUTDOWN_DEADLINE - 300);
  log.info('stopped');
  log.flush();
  return EXIT.OK;
}
