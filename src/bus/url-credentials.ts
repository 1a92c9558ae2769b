/**
 * Credentials written into server URLs (`nats://user:pass@host:4222`, or
 * `nats://token@host:4222`), as the NATS CLI and the Go client accept them.
 * nats.js 3 ignores them, so they are taken out of the URLs here and passed as
 * options; the URLs that remain are safe to log.
 */
export interface UrlCredentials {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

// Up to the last `@`: a password or token may hold `/`, `?`, `#` or `@` unencoded (base64 tokens do).
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@/is;

/** `nats://user:secret@host:4222` -> `nats://host:4222`: URLs may carry credentials. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, '$1');
}

/** Percent-decoding, taking a malformed escape (`p%zz`) literally rather than failing. */
function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function splitUrlCredentials(servers: readonly string[]): UrlCredentials {
  const out: UrlCredentials = { servers: [] };
  for (const server of servers) {
    const m = USERINFO.exec(server);
    if (!m) {
      out.servers.push(server);
      continue;
    }
    out.servers.push(redactUrl(server));
    const info = m[2] ?? '';
    // The first URL that carries credentials decides; they are meant to be the same for a cluster.
    if (out.user !== undefined || out.token !== undefined) continue;
    const colon = info.indexOf(':');
    if (colon >= 0) {
      out.user = decode(info.slice(0, colon));
      out.pass = decode(info.slice(colon + 1));
    } else if (info !== '') {
      out.token = decode(info);
    }
  }
  return out;
}
