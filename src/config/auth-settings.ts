/**
 * How to reach a secured bus: one way to authenticate (user and password, a
 * token, an NKey seed file, or a credentials file with a JWT), and TLS (a CA,
 * and a client certificate for mutual TLS). The names follow NATS tooling.
 */
export interface BusAuth {
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** Path of a file holding an NKey seed (`SU...`). */
  nkey?: string | undefined;
  /** Path of a credentials file (a user JWT and its seed). */
  creds?: string | undefined;
  tlsCa?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

/** The problem with an auth configuration, or undefined; names the settings involved. */
export function authProblem(auth: BusAuth): string | undefined {
  const methods = [
    auth.user || auth.password ? 'user/password (--user, --password)' : undefined,
    auth.token ? 'token (--token)' : undefined,
    auth.nkey ? 'nkey (--nkey)' : undefined,
    auth.creds ? 'creds (--creds)' : undefined,
  ].filter(Boolean);
  if (methods.length > 1) return `use one way to authenticate, not ${methods.join(' and ')}`;
  if (auth.password && !auth.user) return '--password needs --user (NATS_USER)';
  if (auth.user && !auth.password) return '--user needs --password (NATS_PASSWORD)';
  if (Boolean(auth.tlsCert) !== Boolean(auth.tlsKey)) return 'a client certificate needs its key: give both --tls-cert and --tls-key';
  return undefined;
}
