/**
 * `nachos-sentinel --once`: the probe for people, CI and Docker HEALTHCHECK.
 *
 * It runs every few seconds in every container, so it stays cheap: it imports
 * no watcher, no logger and no schema library; the NATS client is loaded only
 * when the bus is asked, and the TOML parser only when a config file is named.
 * Every failure exits 1, a bad flag included, never 2 (Docker reserves 2).
 */
import { connect as tcpConnect } from 'node:net';
import { parseArgs } from 'node:util';
import { parseDuration } from '../../config/duration.js';
import { DEFAULT_HTTP_LISTEN, DEFAULT_SERVERS, formatListenAddress, type ListenAddress } from '../../config/listen-address.js';
import { configFileNamed, readConfigFile, resolveSettings, type Resolved, type ResolveInput, type TomlReader } from '../../config/resolve-settings.js';
import { AUTH_SETTINGS, SHARED_SETTINGS } from '../../config/shared-settings.js';
import { ConfigError } from '../../errors.js';
import { EXIT } from '../exit-codes.js';
import { printable, printableJson } from '../printable.js';
import { print, ProbeError, type ProbeOptions } from './probe-output.js';

export const DEFAULT_PROBE_TIMEOUT = 2000; // 2 s: under Docker's own default of 30 s, and quick for people

/** The probe's help: built when asked for, not on every run. */
export const probeHelp = (): string => `nachos-sentinel --once: is the system healthy? Exit 0 when healthy (or degraded, unless --strict), 1 otherwise.

  nachos-sentinel --once [--component NAME] [--strict] [--json] [--timeout 2s] [--servers URLS]
      asks the sentinel on the bus (nachos.system.health.status) and prints a table
  nachos-sentinel --once --self [--http HOST:PORT] [--json] [--timeout 2s]
      asks this container's own sentinel daemon over HTTP (/readyz); needs no bus

  --component NAME   only that component: "am I seen healthy on the bus?"
  --strict           degraded fails too
  --json             one JSON document instead of the table
  --timeout DURATION bounds the whole probe (default 2s)
  --servers URLS     NATS servers (env NATS_SERVERS, NATS_URL; default ${DEFAULT_SERVERS})
  --http HOST:PORT   where the daemon's HTTP listener is (env SENTINEL_HTTP; default ${DEFAULT_HTTP_LISTEN})
  --config FILE      read servers, http.listen, [auth] and [tls] from the sentinel's config file (env SENTINEL_CONFIG)

  A secured bus: --user/--password, --token, --nkey FILE, --creds FILE, --tls-ca FILE,
  --tls-cert FILE with --tls-key FILE, or credentials in the URL (nats://user:pass@host);
  env ${AUTH_SETTINGS.flatMap((s) => s.env).join(', ')}.
`;

/** The settings the probe shares with the daemon: the same flags, variables, config keys and parsers. */
const PROBE_SETTINGS = [SHARED_SETTINGS.servers, SHARED_SETTINGS.http, ...AUTH_SETTINGS] as const;
/** `--self` needs only where the daemon listens: the bus settings are not even read. */
const SELF_SETTINGS = [SHARED_SETTINGS.http] as const;

/** The probe's flags: its own, and the shared settings' (never the daemon's whole table, with its schema library). */
export const PROBE_OPTIONS = {
  once: { type: 'boolean' },
  self: { type: 'boolean' },
  component: { type: 'string' },
  strict: { type: 'boolean' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...(Object.fromEntries(PROBE_SETTINGS.map((s) => [s.flag, { type: 'string' }])) as { [S in (typeof PROBE_SETTINGS)[number] as S['flag']]: { type: 'string' } }),
} as const;

/** Runs the probe; returns the exit code. Never throws. */
export async function once(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options: ProbeOptions | undefined;
  try {
    options = await probeOptions(argv, env);
    if (!options) {
      print(1, probeHelp());
      return EXIT.OK;
    }
    const { timeoutMs } = options;
    const asked = options;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeError(`no answer within ${timeoutMs} ms (--timeout)`)), timeoutMs);
    });
    try {
      const probe = options.self ? probeSelf(options) : busProbe().then((bus) => bus.probeBus(asked));
      return await Promise.race([probe, deadline]);
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    // Every failure is worded for people already (ProbeError, StatusRequestError, parse errors).
    const message = err instanceof Error ? err.message : String(err);
    if (options?.json) print(1, `${printableJson({ ok: false, error: message })}\n`);
    else print(2, `nachos-sentinel --once: ${printable(message)}\n`);
    return EXIT.FAILURE;
  }
}

async function probeOptions(argv: string[], env: NodeJS.ProcessEnv): Promise<ProbeOptions | undefined> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: PROBE_OPTIONS,
    }));
  } catch (err) {
    throw new ProbeError(`${(err as Error).message.split('. ')[0]}; see --once --help`);
  }
  if (values.help) return undefined;
  const timeoutMs = values.timeout === undefined ? DEFAULT_PROBE_TIMEOUT : checked('--timeout', () => parseDuration(values.timeout));
  // Flags > environment (the names NATS tooling uses) > config file, as for the daemon: the same resolution.
  const input: ResolveInput = { flags: values, env, cwd: process.cwd() };
  let settings;
  try {
    const named = configFileNamed(input);
    // The TOML parser is loaded only when a config file is named; the file's other keys are the daemon's.
    const file = named === undefined ? undefined : readConfigFile(named, await tomlReader());
    settings = values.self ? resolveSettings(SELF_SETTINGS, input, file) : resolveSettings(PROBE_SETTINGS, input, file);
  } catch (err) {
    throw err instanceof ConfigError ? new ProbeError(err.message) : err;
  }
  const { servers = [], http, ...auth } = settings as Partial<Resolved<typeof PROBE_SETTINGS>> & Resolved<typeof SELF_SETTINGS>;
  if (values.self && http === null) throw new ProbeError('--self needs the HTTP listener, but --http is off');
  return {
    auth,
    self: values.self ?? false,
    component: values.component,
    strict: values.strict ?? false,
    json: values.json ?? false,
    timeoutMs,
    servers,
    http,
  };
}

/**
 * smol-toml's parser, loaded only now. No key locator: a bad value names the
 * file and the key, not the line (the locator would cost every probe run its
 * load; `nachos-sentinel validate`-style line numbers are the daemon's).
 */
async function tomlReader(): Promise<TomlReader> {
  const { parse } = await import('smol-toml');
  return { parse, locator: () => () => undefined };
}

function checked<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ProbeError(`${flag}: ${(err as Error).message}`);
  }
}

/**
 * The bus half of the probe, in its own bundle (dist/cli/probe-bus.cjs) so that
 * `--self`, which runs in every container's HEALTHCHECK, never loads it; run
 * from source, the module itself.
 */
async function busProbe(): Promise<typeof import('./probe-bus.js')> {
  if (typeof __dirname === 'string') return require(`${__dirname}/probe-bus.cjs`) as typeof import('./probe-bus.js');
  return import('./probe-bus.js');
}

/** Asks this container's own daemon over its HTTP listener: ready means connected and holding a valid snapshot. */
async function probeSelf(options: ProbeOptions): Promise<number> {
  const address = options.http as ListenAddress;
  // A daemon bound to every interface is reached on loopback.
  const host = address.host === '0.0.0.0' ? '127.0.0.1' : address.host === '::' ? '::1' : address.host;
  const where = formatListenAddress({ host, port: address.port });
  const { status, body } = await httpGet(host, address.port, '/readyz').catch((err: NodeJS.ErrnoException) => {
    throw new ProbeError(
      err.code === 'ECONNREFUSED'
        ? `no sentinel daemon listening on ${where} (is it running, with the same --http?)`
        : `cannot reach the daemon on ${where}: ${err.message}`,
    );
  });
  let readiness: { status?: string; bus?: { connected?: boolean }; policy?: { revision?: string | null } };
  try {
    readiness = JSON.parse(body) as typeof readiness;
  } catch {
    throw new ProbeError(`unexpected answer from ${where}/readyz (HTTP ${status})`);
  }
  const ok = status === 200;
  if (options.json) {
    print(1, `${printableJson({ ...readiness, ok })}\n`);
  } else {
    const revision = typeof readiness.policy?.revision === 'string' ? printable(readiness.policy.revision.slice(0, 12)) : 'none';
    const bus = readiness.bus?.connected ? 'connected to the bus' : 'NOT connected to the bus';
    print(1, `${ok ? 'ready' : 'not ready'}: ${bus}, policy revision ${revision}\n`);
  }
  return ok ? EXIT.OK : EXIT.FAILURE;
}

/**
 * One HTTP/1.0 GET over a plain socket: the daemon's own listener is all it
 * talks to, and node:http would cost this probe a few milliseconds to load,
 * on every run in every container.
 */
export function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port });
    let response = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.end(`GET ${path} HTTP/1.0\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: string) => {
      response += chunk;
      if (response.length > 1024 * 1024) socket.destroy(new Error('answer too large'));
    });
    socket.once('error', reject);
    socket.once('end', () => {
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1]);
      const split = response.indexOf('\r\n\r\n');
      if (!status || split < 0) reject(new Error('not an HTTP answer'));
      else resolve({ status, body: response.slice(split + 4) });
    });
  });
}
