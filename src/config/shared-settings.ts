import type { BusAuth } from './auth-settings.js';
import { DEFAULT_HTTP_LISTEN, DEFAULT_SERVERS, parseListenAddress, type ListenAddress } from './listen-address.js';
import { parseOptional, parseServers } from './values.js';

/**
 * One setting, everywhere it can come from: its flag, its environment
 * variables, its key in the config file, its default, its parser and its
 * help. The daemon's table (settings.ts) adds a schema to each; this file
 * imports no schema library and no TOML parser, so the probe, which runs in
 * every container's HEALTHCHECK, reads the same entries at no cost.
 */
export interface SettingSpec<K extends string = string, T = unknown> {
  key: K;
  /** Key in the config file; a dot for a table (`health.interval`). */
  file: string;
  /** Long flag, without `--`; absent for settings only the config file can hold. */
  flag?: string;
  /** Environment variables, first found wins. */
  env: readonly string[];
  /** The default, as a user would write it (for help and docs). */
  defaultText: string;
  /** Flag type: strings are parsed by `parse`. */
  flagType: 'string' | 'boolean';
  /** The flag may repeat (values are concatenated). */
  multiple?: boolean;
  /** A path: relative to the config file when it comes from there, else to the working directory. */
  isPath?: boolean;
  parse: (raw: unknown) => T;
  help: string;
}

type SecretKey = keyof BusAuth;

function secret<K extends SecretKey, F extends string>(key: K, file: string, flag: F, env: string, isPath: boolean, help: string): SettingSpec<K, string | undefined> & { flag: F } {
  return { key, file, flag, env: [env], defaultText: '', flagType: 'string', isPath, parse: parseOptional, help };
}

/**
 * The settings every command that talks to the bus or to the daemon reads:
 * the daemon, `status` and the probe. Adding an authentication setting is
 * one entry here (and its schema in settings.ts).
 */
export const SHARED_SETTINGS = {
  servers: {
    key: 'servers',
    file: 'servers',
    flag: 'servers',
    env: ['NATS_SERVERS', 'NATS_URL'],
    defaultText: DEFAULT_SERVERS,
    flagType: 'string',
    parse: parseServers,
    help: 'NATS server URLs, comma-separated',
  } satisfies SettingSpec<'servers', string[]>,
  http: {
    key: 'http',
    file: 'http.listen',
    flag: 'http',
    env: ['SENTINEL_HTTP'],
    defaultText: DEFAULT_HTTP_LISTEN,
    flagType: 'string',
    parse: parseListenAddress,
    help: 'HTTP listener for /healthz and /readyz: host:port, or off',
  } satisfies SettingSpec<'http', ListenAddress | null>,
  // Authentication and TLS: the names NATS tooling uses for flags and environment variables.
  user: secret('user', 'auth.user', 'user', 'NATS_USER', false, 'user name for the bus (with --password)'),
  password: secret('password', 'auth.password', 'password', 'NATS_PASSWORD', false, 'password for the bus; prefer the variable or the config file to a flag'),
  token: secret('token', 'auth.token', 'token', 'NATS_TOKEN', false, 'token for the bus'),
  nkey: secret('nkey', 'auth.nkey', 'nkey', 'NATS_NKEY', true, 'file holding an NKey seed'),
  creds: secret('creds', 'auth.creds', 'creds', 'NATS_CREDS', true, 'credentials file (user JWT and seed)'),
  tlsCa: secret('tlsCa', 'tls.ca', 'tls-ca', 'NATS_CA', true, 'CA certificate(s) to verify the bus with'),
  tlsCert: secret('tlsCert', 'tls.cert', 'tls-cert', 'NATS_CERT', true, 'client certificate, for mutual TLS (with --tls-key)'),
  tlsKey: secret('tlsKey', 'tls.key', 'tls-key', 'NATS_KEY', true, 'client key, for mutual TLS'),
} as const;

/** The authentication and TLS entries, in the order help lists them. */
export const AUTH_SETTINGS = [
  SHARED_SETTINGS.user,
  SHARED_SETTINGS.password,
  SHARED_SETTINGS.token,
  SHARED_SETTINGS.nkey,
  SHARED_SETTINGS.creds,
  SHARED_SETTINGS.tlsCa,
  SHARED_SETTINGS.tlsCert,
  SHARED_SETTINGS.tlsKey,
] as const;
