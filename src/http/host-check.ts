import { isIP } from 'node:net';

/**
 * Which `Host` headers the HTTP listener answers. A page on another site can
 * make a browser talk to this listener through DNS rebinding (its own name,
 * re-pointed at 127.0.0.1), and read the answers; such a request always
 * carries that name in `Host`. So the listener answers a name only when it is
 * `localhost` (or under `.localhost`), its configured address, or one the
 * operator allows (`http.allowed_hosts`); an IP address is always answered
 * (kubelet's probes and Prometheus' scrapes come by pod IP, and an address
 * cannot be rebound). A request without `Host` (HTTP/1.0) is answered too.
 */
export function hostAllowed(header: string | undefined, configured: string, allowed: readonly string[]): boolean {
  if (header === undefined || header === '') return true;
  const host = hostOf(header).toLowerCase();
  if (isIP(host) !== 0) return true;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === configured.toLowerCase()) return true;
  return allowed.some((a) => a.toLowerCase() === host);
}

/** `name:port` -> `name`; `[::1]:9470` -> `::1`. */
function hostOf(header: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(header);
  if (bracketed) return bracketed[1] ?? '';
  const colon = header.lastIndexOf(':');
  return colon >= 0 && header.indexOf(':') === colon ? header.slice(0, colon) : header;
}
