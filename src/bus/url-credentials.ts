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

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i;

export function splitUrlCredentials(servers: readonly string[]): UrlCredentials {
  const out: UrlCredentials = { servers: [] };
  for (const server of servers) {
    const m = USERINFO.exec(server);
    if (!m) {
      out.servers.push(server);
      continue;
    }
    out.servers.push(server.replace(USERINFO, '$1'));
    const info = m[2] ?? '';
    // The first URL that carries credentials decides; they are meant to be the same for a cluster.
    if (out.user !== undefined || out.token !== undefined) continue;
    const colon = info.indexOf(':');
    if (colon >= 0) {
      out.user = decodeURIComponent(info.slice(0, colon));
      out.pass = decodeURIComponent(info.slice(colon + 1));
    } else if (info !== '') {
      out.token = decodeURIComponent(info);
    }
  }
  return out;
}
