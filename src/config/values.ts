/**
 * The parsers of plain setting values: each takes what a flag, a variable or
 * a TOML key gave and returns the value, or throws a TypeError saying what
 * would be right. No imports: the probe bundles these.
 */

export function parseNonEmpty(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new TypeError('must not be empty');
  return raw.trim();
}

/** A setting that may be absent: empty is unset. */
export function parseOptional(raw: unknown): string | undefined {
  return raw === '' || raw === undefined ? undefined : parseNonEmpty(raw);
}

/** A list from TOML (array), from repeated flags (array) or from one comma-separated string. */
export function parseList(raw: unknown): string[] {
  const items = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(','));
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

export function parseServers(raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : [raw];
  if (items.some((v) => typeof v !== 'string')) throw new TypeError('must be a server URL or an array of them');
  const servers = parseList(raw);
  if (servers.length === 0) throw new TypeError('needs at least one server URL');
  for (const s of servers) {
    if (/\s/.test(s)) throw new TypeError(`"${s}" is not a server URL`);
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1]?.toLowerCase();
    if (scheme !== undefined && !['nats', 'tls'].includes(scheme)) {
      throw new TypeError(`"${s}": unsupported scheme "${scheme}://"; use nats:// or tls://`);
    }
  }
  return servers;
}

export function parsePositiveInteger(raw: unknown): number {
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isSafeInteger(n) || n < 1) throw new TypeError(`"${raw}" is not a positive whole number`);
  return n;
}

export function parseBoolean(raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const text = String(raw).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off', ''].includes(text)) return false;
  throw new TypeError(`"${raw}" is not true or false`);
}

