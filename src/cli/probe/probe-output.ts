import { writeSync } from 'node:fs';
import type { BusAuth } from '../../config/auth-settings.js';
import type { ListenAddress } from '../../config/listen-address.js';

/** What the probe was asked, resolved from flags, environment and config file. */
export interface ProbeOptions {
  auth: BusAuth;
  self: boolean;
  component: string | undefined;
  strict: boolean;
  json: boolean;
  timeoutMs: number;
  servers: string[];
  http: ListenAddress | null;
}

/** A probe failure, already worded for the person who ran it. */
export class ProbeError extends Error {}

/**
 * Writes straight to the file descriptor: creating process.stdout costs the
 * probe more than its whole HTTP request. Falls back to the stream if the
 * descriptor would block.
 */
export function print(fd: 1 | 2, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    (fd === 1 ? process.stdout : process.stderr).write(text);
  }
}
