/** Where the HTTP listener binds; `null` when turned off. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The documented default: loopback only, so nothing is exposed unless asked for. */
export const DEFAULT_HTTP_LISTEN = '127.0.0.1:9470';

/** The bus when none is named, as in NATS tooling; here because the probe shares it with the daemon. */
export const DEFAULT_SERVERS = 'nats://127.0.0.1:4222';

/**
 * `host:port`, `[v6]:port`, `:port` (loopback) or `off`. Port 0 asks the OS
 * for a free port (tests use it). Throws a TypeError naming the expected form.
 */
export function parseListenAddress(input: unknown): ListenAddress | null {
  const text = String(input).trim();
  if (['off', 'false', 'none', 'disabled'].includes(text.toLowerCase())) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new TypeError(`"${text}" is not a listen address; write it like "127.0.0.1:9470", ":9470" or "off"`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** `host:port` for URLs and logs (IPv6 in brackets). */
export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
