import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * A name for this process start, unique across restarts: the host name (in
 * Docker, the container id) and a random suffix. Safe as a subject token.
 */
export function makeInstanceId(host: string = hostname()): string {
  const base = host.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'host';
  return `${base}-${randomBytes(3).toString('hex')}`;
}
