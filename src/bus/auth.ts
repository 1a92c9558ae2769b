import { readFileSync } from 'node:fs';
import type { Authenticator, ConnectionOptions } from '@nats-io/transport-node';
import type { BusAuth } from '../config/auth-settings.js';
import { splitUrlCredentials } from './url-credentials.js';

/** The client functions that turn key material into authenticators (from the bundled or the full client). */
export interface AuthenticatorFactories {
  nkeyAuthenticator(seed: () => Uint8Array): Authenticator;
  credsAuthenticator(creds: () => Uint8Array): Authenticator;
}

/** Which way of authenticating `auth` uses, for logs and messages (never the secret itself). */
export function authMethod(auth: BusAuth, servers: readonly string[] = []): string {
  if (auth.creds) return 'creds';
  if (auth.nkey) return 'nkey';
  if (auth.token) return 'token';
  if (auth.user) return 'user/password';
  const inUrl = splitUrlCredentials(servers);
  if (inUrl.token) return 'token (in the URL)';
  if (inUrl.user) return 'user/password (in the URL)';
  return 'none';
}

/**
 * Connection options for `auth`. Key files are read at each connection
 * attempt, so a rotated secret is picked up on the next reconnect.
 */
export function authOptions(
  servers: readonly string[],
  auth: BusAuth,
  factories: AuthenticatorFactories,
): Partial<ConnectionOptions> {
  const fromUrl = splitUrlCredentials(servers);
  const options: Partial<ConnectionOptions> = { servers: fromUrl.servers };
  if (auth.creds) {
    const file = auth.creds;
    options.authenticator = factories.credsAuthenticator(() => readFileSync(file));
  } else if (auth.nkey) {
    const file = auth.nkey;
    options.authenticator = factories.nkeyAuthenticator(() => new TextEncoder().encode(readFileSync(file, 'utf8').trim()));
  } else if (auth.token) {
    options.token = auth.token;
  } else if (auth.user) {
    options.user = auth.user;
    options.pass = auth.password ?? '';
  } else if (fromUrl.token) {
    options.token = fromUrl.token;
  } else if (fromUrl.user) {
    options.user = fromUrl.user;
    options.pass = fromUrl.pass ?? '';
  }
  const tlsScheme = fromUrl.servers.some((s) => /^tls:\/\//i.test(s));
  if (auth.tlsCa || auth.tlsCert || tlsScheme) {
    options.tls = {
      ...(auth.tlsCa ? { caFile: auth.tlsCa } : {}),
      ...(auth.tlsCert ? { certFile: auth.tlsCert } : {}),
      ...(auth.tlsKey ? { keyFile: auth.tlsKey } : {}),
    };
  }
  return options;
}

/** Whether a connection error means the bus refused our credentials (retrying will not fix it). */
export function isAuthError(err: unknown): boolean {
  const text = `${(err as Error)?.name ?? ''} ${(err as Error)?.message ?? ''}`;
  return /authorization|authentication|AuthorizationError|user authentication expired/i.test(text);
}
