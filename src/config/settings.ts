import { homedir } from 'node:os';
import { Type, type TSchema } from '@sinclair/typebox';
import { CheckSpecSchema, checksFromUrls, DEFAULT_CHECK_TIMEOUT, OWN_CHECK_SLOTS, OWN_CHECKS, type CheckSpec, type CheckSpecInput } from '../health/check-specs.js';
import { DEFAULT_MAX_PER_COMPONENT } from '../health/instances.js';
import { MAX_CHECKS, MAX_INTERVAL_MS } from '../health/heartbeat-payload.js';
import { INVALID_FILE_MODES, type InvalidFileMode } from '../policy/invalid-files.js';
import { CONSUMERS, type Consumer } from '../policy/consumer.js';
import { parseByteSize } from './byte-size.js';
import { parseDuration } from './duration.js';
import type { ListenAddress } from './listen-address.js';
import { AUTH_SETTINGS, SHARED_SETTINGS, type SettingSpec } from './shared-settings.js';
import { parseBoolean, parseList, parseNonEmpty, parseOptional, parsePositiveInteger } from './values.js';
import { hasUserInfo, shownUrl } from '../text/shown-url.js';
import { isPublicKey, isSeed } from '../trust/nkey.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The daemon's configuration, resolved: flags > environment > config file > defaults. */
export interface SentinelConfig {
  /** The TOML config file read, if any. */
  configFile: string | undefined;
  servers: string[];
  /** Absolute path of the policy directory. */
  policies: string;
  /** Absolute paths of other TOML files watched with the policies. */
  watch: string[];
  allowEmpty: boolean;
  /** Unknown keys in policy files are errors, not warnings. */
  strictKeys: boolean;
  /** What an invalid file does to the set. */
  invalidFiles: InvalidFileMode;
  /** Who reads the delivered files: Nachos' gateway (only *.yaml, *.yml) or a bus subscriber. */
  consumer: Consumer;
  /** A policy file the consumer never reads is an error, not a warning. */
  strictConsumer: boolean;
  quietWindowMs: number;
  maxWaitMs: number;
  /** Wait while another process holds a policy file open for writing (read from /proc). */
  waitForWriters: boolean;
  rescanIntervalMs: number;
  maxFileBytes: number;
  logLevel: LogLevel;
  /** JSON lines, or pino-pretty's lines for people; `auto`: pretty when stdout is a terminal. */
  logFormat: LogFormat;
  /** What this sentinel reports as (envelope `source`, heartbeat `component`). */
  component: string;
  /** Heartbeat interval H. */
  healthIntervalMs: number;
  /** Components the system needs: one missing or unhealthy makes it unhealthy. */
  required: string[];
  /** Components the system can do without: one missing or failing makes it at most degraded. */
  optional: string[];
  /** Cap on tracked (component, instance) pairs. */
  maxInstances: number;
  /** Cap on tracked instances of any one component. */
  maxInstancesPerComponent: number;
  /** The longest interval a sender's silence is judged against, whatever it declares. */
  maxIntervalMs: number;
  /** Checks of the container beside the sentinel. */
  checks: CheckSpec[];
  /** NKey seed file (absolute) this process signs its heartbeats with; unsigned when undefined. */
  healthSeed: string | undefined;
  /** Component -> the public NKeys whose signature its heartbeats must carry to be believed. */
  healthTrust: Record<string, string[]>;
  /** The HTTP listener (/healthz, /readyz); null when off. */
  http: ListenAddress | null;
  /** Host names the HTTP listener answers besides localhost, its own address and IP addresses. */
  httpAllowedHosts: string[];
  // Authentication and TLS (see bus/auth.ts); secrets are never logged.
  user: string | undefined;
  password: string | undefined;
  token: string | undefined;
  /** NKey seed file (absolute). */
  nkey: string | undefined;
  /** Credentials file (absolute). */
  creds: string | undefined;
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** NKey seed file to sign reloads with (absolute); off when undefined. */
  signingSeed: string | undefined;
  /** The public NKeys whose signatures are trusted (the sidecar; `verify`): several during a key rotation. */
  publicKeys: string[];
  /** The deployment every signed set names: a receiver of another deployment refuses it ("" when none is named). */
  deployment: string;
  /** How long a signed statement of a set holds; the central sentinel signs the set in force again at half of it. */
  expiresAfterMs: number;
  /** How far ahead of this host's clock an `issuedAt` may be. */
  maxClockSkewMs: number;
  // The sidecar role ([sidecar]).
  /** `--check URL`: checks of the neighbour, by URL (http, https, tcp). */
  sidecarChecks: CheckSpec[];
  /** Where the sidecar delivers each verified set (absolute); off when undefined. */
  deliverTo: string | undefined;
  /** Move what a delivery directory holds that the sidecar did not write aside at start, instead of refusing to start. */
  takeOver: boolean;
  /** POSTed after each delivery (retried with backoff). */
  reloadUrl: string | undefined;
  /** Headers sent with each reload POST (credentials go here, never in the URL); values never logged. */
  reloadHeaders: Record<string, string>;
  /** Run by /bin/sh -c after each delivery. */
  reloadCommand: string | undefined;
  /** Bounds each reload POST and the reload command. */
  reloadTimeoutMs: number;
  // History and rollout ([history], [rollout]).
  /** Where the local history is kept (absolute). */
  stateDir: string;
  /** Where the history lives: the state directory, a JetStream stream, or nowhere. */
  historyStore: HistoryStoreKind;
  /** The newest sets kept. */
  historyKeep: number;
  /** JetStream: the stream's name and replicas. */
  historyStream: string;
  historyReplicas: number;
  /** Components (or `component/instance`) that get each new set first; empty: no canary. */
  canary: string[];
  /** How long the canaries must hold their health after delivery before everyone gets the set. */
  bakeMs: number;
}

export const HISTORY_STORES = ['local', 'jetstream', 'off'] as const;
export type HistoryStoreKind = (typeof HISTORY_STORES)[number];
/** Where the local history is kept unless configured otherwise (`/var/lib/nachos-sentinel` in the image). */
export const DEFAULT_STATE_DIR = '~/.local/state/nachos-sentinel';
export const DEFAULT_HISTORY_STREAM = 'NACHOS_POLICY_HISTORY';

/**
 * One setting of the daemon: the shared entry (shared-settings.ts: flag,
 * environment, config key, default, parser, help) and the schema of its value
 * in the config file (also the config file's JSON Schema). This table is the
 * single source of flags, environment variables, config keys, defaults,
 * parsing and help.
 */
export interface Setting<K extends keyof SentinelConfig = keyof SentinelConfig> extends SettingSpec<K, SentinelConfig[K]> {
  schema: TSchema;
}

const DURATION = Type.Union([Type.String({ pattern: '^\\s*(\\d+(\\.\\d+)?(ms|s|m|h))+\\s*$' }), Type.Integer({ minimum: 0 })], {
  errorMessage: 'must be a duration such as "50ms", "5s" or "1m"',
});
const SIZE = Type.Union([Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgG]i?[bB]|[bB])?\\s*$' }), Type.Integer({ minimum: 1 })], {
  errorMessage: 'must be a size such as "512KiB" or "1MiB", or a number of bytes',
});

export const MIN_HEALTH_INTERVAL = 50; // ms
export const DEFAULT_MAX_INSTANCES = 10_000;

function setting<K extends keyof SentinelConfig>(s: Setting<K>): Setting<K> {
  return s;
}

export const SETTINGS = [
  setting({
    ...SHARED_SETTINGS.servers,
    schema: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
      errorMessage: 'must be a server URL or an array of them',
    }),
  }),
  setting({
    key: 'policies',
    file: 'policies',
    flag: 'policies',
    env: ['POLICY_PATH'],
    defaultText: './policies',
    schema: Type.String({ minLength: 1 }),
    flagType: 'string',
    isPath: true,
    parse: parseNonEmpty,
    help: 'the policy directory; every *.toml, *.yaml and *.yml directly inside it is a policy file',
  }),
  setting({
    key: 'watch',
    file: 'watch',
    flag: 'watch-file',
    env: ['SENTINEL_WATCH'],
    defaultText: '',
    schema: Type.Array(Type.String({ minLength: 1 })),
    flagType: 'string',
    multiple: true,
    isPath: true,
    parse: parseList,
    help: 'other TOML files to watch and check with the policies (repeatable, or comma-separated)',
  }),
  setting({
    key: 'allowEmpty',
    file: 'allow_empty',
    flag: 'allow-empty',
    env: ['SENTINEL_ALLOW_EMPTY'],
    defaultText: 'false',
    schema: Type.Boolean(),
    flagType: 'boolean',
    parse: parseBoolean,
    help: 'accept a policy directory with no policy files',
  }),
  setting({
    key: 'strictKeys',
    file: 'policy.strict_keys',
    flag: 'strict-keys',
    env: ['SENTINEL_STRICT_KEYS'],
    defaultText: 'false',
    schema: Type.Boolean(),
    flagType: 'boolean',
    parse: parseBoolean,
    help: 'unknown keys in policy files are errors, not warnings',
  }),
  setting({
    key: 'invalidFiles',
    file: 'policy.invalid_files',
    flag: 'invalid-files',
    env: ['SENTINEL_INVALID_FILES'],
    defaultText: 'reject-set',
    schema: Type.Union(
      INVALID_FILE_MODES.map((m) => Type.Literal(m)),
      {},
    ),
    flagType: 'string',
    parse: parseInvalidFiles,
    help: 'what an invalid policy file does: reject-set (the whole new set is refused) or skip-file (that file is left out; each problem says what Nachos does with it)',
  }),
  setting({
    key: 'consumer',
    file: 'policy.consumer',
    flag: 'consumer',
    env: ['SENTINEL_CONSUMER'],
    defaultText: 'nachos',
    schema: Type.Union(
      CONSUMERS.map((c) => Type.Literal(c)),
      {},
    ),
    flagType: 'string',
    parse: (raw) => {
      const text = String(raw).trim().toLowerCase();
      if ((CONSUMERS as readonly string[]).includes(text)) return text as Consumer;
      throw new TypeError(`"${String(raw).slice(0, 40)}" is not a consumer; use nachos (Nachos' gateway reads the delivered *.yaml and *.yml files) or bus (a subscriber reads the documents from the reload)`);
    },
    help: "who reads the policies: nachos (Nachos' gateway, which reads only *.yaml and *.yml) or bus (a subscriber that reads the documents from the reload)",
  }),
  setting({
    key: 'strictConsumer',
    file: 'policy.strict_consumer',
    flag: 'strict-consumer',
    env: ['SENTINEL_STRICT_CONSUMER'],
    defaultText: 'false',
    schema: Type.Boolean(),
    flagType: 'boolean',
    parse: parseBoolean,
    help: 'a policy file the consumer never reads (for Nachos: *.toml) is an error, not a warning',
  }),
  setting({
    key: 'quietWindowMs',
    file: 'quiet_window',
    flag: 'quiet-window',
    env: ['SENTINEL_QUIET_WINDOW'],
    defaultText: '50ms',
    schema: DURATION,
    flagType: 'string',
    parse: parseDuration,
    help: 'wait this long after the last file event before reading the set',
  }),
  setting({
    key: 'maxWaitMs',
    file: 'max_wait',
    flag: 'max-wait',
    env: ['SENTINEL_MAX_WAIT'],
    defaultText: '1s',
    schema: DURATION,
    flagType: 'string',
    parse: parseDuration,
    help: 'but never longer than this after the first event of a burst',
  }),
  setting({
    key: 'waitForWriters',
    file: 'wait_for_writers',
    flag: 'wait-for-writers',
    env: ['SENTINEL_WAIT_FOR_WRITERS'],
    defaultText: 'true',
    schema: Type.Boolean(),
    flagType: 'string',
    parse: parseBoolean,
    help: 'while another process (in this PID namespace) holds a policy file open for writing, wait for it, up to 4 x max_wait (true or false)',
  }),
  setting({
    key: 'rescanIntervalMs',
    file: 'rescan_interval',
    flag: 'rescan-interval',
    env: ['SENTINEL_RESCAN_INTERVAL'],
    defaultText: '60s',
    schema: DURATION,
    flagType: 'string',
    parse: parseDuration,
    help: 'full re-read for changes a watcher misses (network filesystems); 0 turns it off',
  }),
  setting({
    key: 'maxFileBytes',
    file: 'max_file_size',
    flag: 'max-file-size',
    env: ['SENTINEL_MAX_FILE_SIZE'],
    defaultText: '1MiB',
    schema: SIZE,
    flagType: 'string',
    parse: parseByteSize,
    help: 'refuse policy files larger than this',
  }),
  setting({
    key: 'logLevel',
    file: 'log_level',
    flag: 'log-level',
    env: ['LOG_LEVEL'],
    defaultText: 'info',
    schema: Type.Union(
      LOG_LEVELS.map((l) => Type.Literal(l)),
      {},
    ),
    flagType: 'string',
    parse: parseLogLevel,
    help: `log level: ${LOG_LEVELS.join(', ')}`,
  }),
  setting({
    key: 'logFormat',
    file: 'log_format',
    flag: 'log-format',
    env: ['LOG_FORMAT'],
    defaultText: 'auto',
    schema: Type.Union(
      LOG_FORMATS.map((f) => Type.Literal(f)),
      {},
    ),
    flagType: 'string',
    parse: (raw) => {
      const text = String(raw).trim().toLowerCase();
      if ((LOG_FORMATS as readonly string[]).includes(text)) return text as LogFormat;
      throw new TypeError(`"${raw}" is not a log format; use json, pretty or auto (pretty on a terminal, JSON otherwise)`);
    },
    help: 'log lines as json, pretty (pino-pretty, for people) or auto: pretty when stdout is a terminal',
  }),
  setting({
    key: 'component',
    file: 'health.component',
    flag: 'component',
    env: ['SENTINEL_COMPONENT'],
    defaultText: 'sentinel',
    schema: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
    flagType: 'string',
    parse: parseComponent,
    help: 'the name this sentinel reports as on the bus',
  }),
  setting({
    key: 'healthIntervalMs',
    file: 'health.interval',
    flag: 'interval',
    env: ['SENTINEL_HEALTH_INTERVAL'],
    defaultText: '5s',
    schema: DURATION,
    flagType: 'string',
    parse: (raw) => {
      // Whole milliseconds within what every heartbeat receiver accepts (the heartbeat schema's bounds).
      const ms = Math.round(parseDuration(raw));
      if (ms < MIN_HEALTH_INTERVAL) throw new TypeError(`must be at least ${MIN_HEALTH_INTERVAL}ms`);
      if (ms > MAX_INTERVAL_MS) throw new TypeError('must be at most 1h');
      return ms;
    },
    help: 'heartbeat interval H (jittered by about 10%)',
  }),
  setting({
    key: 'required',
    file: 'health.required',
    flag: 'require',
    env: ['SENTINEL_REQUIRE'],
    defaultText: '',
    schema: Type.Array(Type.String({ minLength: 1, maxLength: 64 })),
    flagType: 'string',
    multiple: true,
    parse: parseList,
    help: 'components the system needs (comma-separated or repeated)',
  }),
  setting({
    key: 'optional',
    file: 'health.optional',
    flag: 'optional',
    env: ['SENTINEL_OPTIONAL'],
    defaultText: '',
    schema: Type.Array(Type.String({ minLength: 1, maxLength: 64 })),
    flagType: 'string',
    multiple: true,
    parse: parseList,
    help: 'components the system can do without (comma-separated or repeated)',
  }),
  setting({
    key: 'maxInstances',
    file: 'health.max_instances',
    flag: 'max-instances',
    env: ['SENTINEL_MAX_INSTANCES'],
    defaultText: String(DEFAULT_MAX_INSTANCES),
    schema: Type.Integer({ minimum: 1 }),
    flagType: 'string',
    parse: parsePositiveInteger,
    help: 'cap on tracked (component, instance) pairs',
  }),
  setting({
    key: 'maxInstancesPerComponent',
    file: 'health.max_instances_per_component',
    flag: 'max-instances-per-component',
    env: ['SENTINEL_MAX_INSTANCES_PER_COMPONENT'],
    defaultText: String(DEFAULT_MAX_PER_COMPONENT),
    schema: Type.Integer({ minimum: 1 }),
    flagType: 'string',
    parse: parsePositiveInteger,
    help: 'cap on tracked instances of one component (a flood under one name displaces only that name)',
  }),
  setting({
    key: 'maxIntervalMs',
    file: 'health.max_interval',
    flag: 'max-interval',
    env: ['SENTINEL_MAX_INTERVAL'],
    defaultText: '1m',
    schema: DURATION,
    flagType: 'string',
    parse: (raw) => {
      const ms = Math.round(parseDuration(raw));
      if (ms < MIN_HEALTH_INTERVAL) throw new TypeError(`must be at least ${MIN_HEALTH_INTERVAL}ms`);
      return ms;
    },
    help: 'judge a sender\'s silence against at most this interval, whatever it declares',
  }),
  setting({
    key: 'checks',
    file: 'health.checks',
    env: [],
    defaultText: '',
    schema: Type.Array(CheckSpecSchema),
    flagType: 'string',
    parse: parseChecks,
    help: 'checks of the container beside the sentinel ([[health.checks]] tables)',
  }),
  setting({
    key: 'healthSeed',
    file: 'health.signing_seed',
    flag: 'health-seed',
    env: ['SENTINEL_HEALTH_SEED'],
    defaultText: '',
    schema: Type.String({ minLength: 1 }),
    flagType: 'string',
    isPath: true,
    parse: parseOptional,
    help: 'NKey seed file (mode 600): sign every heartbeat this process publishes, for sentinels that protect its component ([health.trust])',
  }),
  setting({
    key: 'healthTrust',
    file: 'health.trust',
    flag: 'heartbeat-key',
    env: ['SENTINEL_HEARTBEAT_KEYS'],
    defaultText: '',
    schema: Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), {
      errorMessage: 'must be a table of component names, each with an array of public NKeys',
    }),
    flagType: 'string',
    multiple: true,
    parse: parseHeartbeatKeys,
    help: 'COMPONENT=KEY: believe heartbeats of COMPONENT only when signed by KEY (repeatable; comma-separated in the variable; [health.trust] in the file)',
  }),
  setting({ ...SHARED_SETTINGS.http, schema: Type.String({ minLength: 1 }) }),
  setting({
    key: 'httpAllowedHosts',
    file: 'http.allowed_hosts',
    flag: 'http-allowed-hosts',
    env: ['SENTINEL_HTTP_ALLOWED_HOSTS'],
    defaultText: '',
    schema: Type.Array(Type.String({ minLength: 1 })),
    flagType: 'string',
    multiple: true,
    parse: parseList,
    help: 'host names the HTTP listener answers besides localhost, its own address and IP addresses (against DNS rebinding)',
  }),
  ...secretSettings(),
  ...sidecarSettings(),
] as const satisfies readonly Setting[];

/** The sidecar role's settings: `[sidecar]` in the config file. */
function sidecarSettings() {
  return [
    setting({
      key: 'sidecarChecks',
      file: 'sidecar.check',
      flag: 'check',
      env: ['SENTINEL_CHECK'],
      defaultText: '',
      schema: Type.Array(Type.String({ pattern: '^([^:/=]*=)?\\s*(https?|tcp)://' }), { errorMessage: 'must be an array of URLs (http://, https:// or tcp://host:port), each NAME=URL to name its check' }),
      flagType: 'string',
      multiple: true,
      parse: (raw) => checksFromUrls(parseList(raw)),
      help: 'sidecar: [NAME=]URL: check the neighbour at this URL (http://, https:// or tcp://host:port; repeatable), named NAME or else after the component (gateway, gateway-2, ...); a Nachos HealthCheck body is taken over, its version and uptime too',
    }),
    setting({
      key: 'deliverTo',
      file: 'sidecar.deliver_to',
      flag: 'deliver-to',
      env: ['SENTINEL_DELIVER_TO'],
      defaultText: '',
      schema: Type.String({ minLength: 1 }),
      flagType: 'string',
      isPath: true,
      parse: parseOptional,
      help: 'sidecar: write each verified policy set into this directory, in the ConfigMap layout (off by default)',
    }),
    setting({
      key: 'takeOver',
      file: 'sidecar.take_over',
      flag: 'take-over',
      env: ['SENTINEL_TAKE_OVER'],
      defaultText: 'false',
      schema: Type.Boolean(),
      flagType: 'boolean',
      parse: parseBoolean,
      help: 'sidecar: a delivery directory that holds files the sidecar did not write is taken over (they are moved into ..taken-over-<time>/) instead of refused',
    }),
    setting({
      key: 'reloadUrl',
      file: 'sidecar.reload_url',
      flag: 'reload-url',
      env: ['SENTINEL_RELOAD_URL'],
      defaultText: '',
      schema: Type.String({ pattern: '^https?://' }),
      flagType: 'string',
      parse: (raw) => {
        const url = parseOptional(raw);
        if (url === undefined) return undefined;
        // Never echoed: a URL may carry a secret.
        if (!/^https?:\/\/[^\s/]+/.test(url)) throw new TypeError(`${shownUrl(url)} is not an http:// or https:// URL`);
        if (hasUserInfo(url)) {
          throw new TypeError(
            `${shownUrl(url)} carries a user name or password, which fetch never sends; give them in a header instead: --reload-header "Authorization: Basic <base64 of user:password>"`,
          );
        }
        return url;
      },
      help: 'sidecar: POST to this URL after each delivery (retried with backoff until it answers 2xx); shown with query values hidden',
    }),
    setting({
      key: 'reloadHeaders',
      file: 'sidecar.reload_headers',
      flag: 'reload-header',
      env: ['SENTINEL_RELOAD_HEADER'],
      defaultText: '',
      schema: Type.Record(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }), Type.String(), { errorMessage: 'must be a table of header names and values' }),
      flagType: 'string',
      multiple: true,
      parse: parseHeaders,
      help: 'sidecar: a header sent with each reload POST, "Name: value" (repeatable; the place for credentials; values are never logged)',
    }),
    setting({
      key: 'reloadCommand',
      file: 'sidecar.reload_command',
      flag: 'reload-command',
      env: ['SENTINEL_RELOAD_COMMAND'],
      defaultText: '',
      schema: Type.String({ minLength: 1 }),
      flagType: 'string',
      parse: parseOptional,
      help: 'sidecar: run this (by /bin/sh -c) after each delivery',
    }),
    setting({
      key: 'reloadTimeoutMs',
      file: 'sidecar.reload_timeout',
      flag: 'reload-timeout',
      env: ['SENTINEL_RELOAD_TIMEOUT'],
      defaultText: '10s',
      schema: DURATION,
      flagType: 'string',
      parse: parseDuration,
      help: 'sidecar: bound each reload POST and the reload command',
    }),
  ];
}

/** Authentication and TLS (shared with the probe), and the signing seed (the daemon's alone). */
function secretSettings() {
  return [
    ...AUTH_SETTINGS.map((s) => setting({ ...s, schema: Type.String({ minLength: 1 }) })),
    setting({
      key: 'signingSeed',
      file: 'trust.signing_seed',
      flag: 'signing-seed',
      env: ['SENTINEL_SIGNING_SEED'],
      defaultText: '',
      schema: Type.String({ minLength: 1 }),
      flagType: 'string',
      isPath: true,
      parse: parseOptional,
      help: 'NKey seed file (mode 600): sign every reload (off by default)',
    }),
    setting({
      key: 'publicKeys',
      file: 'trust.keys',
      flag: 'public-key',
      env: ['SENTINEL_PUBLIC_KEY'],
      defaultText: '',
      schema: Type.Array(Type.String({ minLength: 1 })),
      flagType: 'string',
      multiple: true,
      parse: parsePublicKeys,
      help: 'sidecar, verify: accept only reloads signed by this public NKey (repeatable, or comma-separated: several during a key rotation)',
    }),
    setting({
      key: 'deployment',
      file: 'trust.deployment',
      flag: 'deployment',
      env: ['SENTINEL_DEPLOYMENT'],
      defaultText: '',
      schema: Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_.-]*$' }),
      flagType: 'string',
      parse: (raw) => {
        const text = String(raw ?? '').trim();
        if (!/^[A-Za-z0-9_.-]{0,64}$/.test(text)) throw new TypeError(`"${text.slice(0, 64)}" must be at most 64 letters, digits, ".", "-" or "_"`);
        return text;
      },
      help: 'the name of this deployment, in every signed set: a sidecar of another deployment refuses it (same on the central sentinel and its sidecars)',
    }),
    setting({
      key: 'expiresAfterMs',
      file: 'trust.expires_after',
      flag: 'expires-after',
      env: ['SENTINEL_EXPIRES_AFTER'],
      defaultText: '24h',
      schema: DURATION,
      flagType: 'string',
      parse: (raw) => {
        const ms = Math.round(parseDuration(raw));
        if (ms < 1000) throw new TypeError('must be at least 1s');
        if (ms > 366 * 24 * 3_600_000) throw new TypeError('must be at most 366 days (8784h)');
        return ms;
      },
      help: 'how long a signed set holds; the set in force is signed and announced again at half of it',
    }),
    setting({
      key: 'stateDir',
      file: 'history.dir',
      flag: 'state-dir',
      env: ['SENTINEL_STATE_DIR'],
      defaultText: DEFAULT_STATE_DIR,
      schema: Type.String({ minLength: 1 }),
      flagType: 'string',
      isPath: true,
      parse: (raw) => {
        const text = parseNonEmpty(raw);
        // `~/...` as a shell would have it.
        return text === '~' || text.startsWith('~/') ? homedir() + text.slice(1) : text;
      },
      help: 'where the policy history is kept (history.store = "local"); /var/lib/nachos-sentinel in the image',
    }),
    setting({
      key: 'historyStore',
      file: 'history.store',
      flag: 'history-store',
      env: ['SENTINEL_HISTORY_STORE'],
      defaultText: 'local',
      schema: Type.Union(HISTORY_STORES.map((m) => Type.Literal(m))),
      flagType: 'string',
      parse: (raw) => {
        const text = String(raw).trim();
        if (!(HISTORY_STORES as readonly string[]).includes(text)) throw new TypeError(`must be one of ${HISTORY_STORES.join(', ')}`);
        return text as HistoryStoreKind;
      },
      help: 'where the policy history lives: local (the state directory), jetstream (a stream every central sentinel shares; sidecars read it when no sentinel answers), or off',
    }),
    setting({
      key: 'historyKeep',
      file: 'history.keep',
      flag: 'history-keep',
      env: ['SENTINEL_HISTORY_KEEP'],
      defaultText: '100',
      schema: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
      flagType: 'string',
      parse: (raw) => {
        const n = parsePositiveInteger(raw);
        if (n > 1_000_000) throw new TypeError('must be at most 1000000');
        return n;
      },
      help: 'how many of the newest history entries are kept (with the files they use)',
    }),
    setting({
      key: 'historyStream',
      file: 'history.stream',
      flag: 'history-stream',
      env: ['SENTINEL_HISTORY_STREAM'],
      defaultText: DEFAULT_HISTORY_STREAM,
      schema: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
      flagType: 'string',
      parse: (raw) => {
        const text = String(raw).trim();
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) throw new TypeError(`"${text.slice(0, 64)}" must be 1 to 64 letters, digits, "-" or "_"`);
        return text;
      },
      help: 'history.store = "jetstream": the stream\'s name',
    }),
    setting({
      key: 'historyReplicas',
      file: 'history.replicas',
      flag: 'history-replicas',
      env: ['SENTINEL_HISTORY_REPLICAS'],
      defaultText: '1',
      schema: Type.Integer({ minimum: 1, maximum: 5 }),
      flagType: 'string',
      parse: (raw) => {
        const n = parsePositiveInteger(raw);
        if (n > 5) throw new TypeError('must be 1 to 5 (JetStream keeps at most 5 replicas)');
        return n;
      },
      help: 'history.store = "jetstream": the stream\'s replicas (3 in a three-node cluster)',
    }),
    setting({
      key: 'canary',
      file: 'rollout.canary',
      flag: 'canary',
      env: ['SENTINEL_CANARY'],
      defaultText: '',
      schema: Type.Array(Type.String({ minLength: 1, maxLength: 193, pattern: '^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:/-]+)?$' })),
      flagType: 'string',
      multiple: true,
      parse: (raw) => {
        const names = parseList(raw);
        for (const name of names) {
          if (!/^[A-Za-z0-9_.:-]{1,64}(\/[A-Za-z0-9_.:/-]{1,128})?$/.test(name)) throw new TypeError(`"${name.slice(0, 64)}" is not a component name, or component/instance`);
        }
        return names;
      },
      help: 'components (or component/instance) that get each new policy set first; everyone else gets it after they held their health for --bake (repeatable, or comma-separated)',
    }),
    setting({
      key: 'bakeMs',
      file: 'rollout.bake',
      flag: 'bake',
      env: ['SENTINEL_BAKE'],
      defaultText: '30s',
      schema: DURATION,
      flagType: 'string',
      parse: (raw) => {
        const ms = Math.round(parseDuration(raw));
        if (ms > 24 * 3_600_000) throw new TypeError('must be at most 24h');
        return ms;
      },
      help: 'with --canary: how long every canary must hold its health after delivery before everyone gets the set',
    }),
    setting({
      key: 'maxClockSkewMs',
      file: 'trust.max_clock_skew',
      flag: 'max-clock-skew',
      env: ['SENTINEL_MAX_CLOCK_SKEW'],
      defaultText: '5m',
      schema: DURATION,
      flagType: 'string',
      parse: parseDuration,
      help: 'refuse a set issued further ahead of this host\'s clock than this',
    }),
  ];
}

/** `Name: value` lines (flags, one environment variable) or a TOML table, as headers; a bad one is named, its value never shown. */
function parseHeaders(raw: unknown): Record<string, string> {
  if (raw === '' || raw === undefined) return {};
  const headers: Record<string, string> = {};
  const entries: [string, string][] =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)])
      : (Array.isArray(raw) ? raw : [raw]).map((line) => {
          const text = String(line);
          const colon = text.indexOf(':');
          if (colon <= 0) throw new TypeError('a header is "Name: value"');
          return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
        });
  for (const [name, value] of entries) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new TypeError(`"${name.slice(0, 40)}" is not a header name`);
    if (/[\r\n\0]/.test(value)) throw new TypeError(`the value of header ${name} holds a line break`);
    headers[name] = value;
  }
  return headers;
}

/** `gateway=UA...` entries (flags, the variable) or a `[health.trust]` table, as component -> keys, each key checked. */
function parseHeartbeatKeys(raw: unknown): Record<string, string[]> {
  if (raw === '' || raw === undefined) return {};
  const pairs: [string, unknown][] =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? Object.entries(raw as Record<string, unknown>)
      : parseList(raw).map((entry) => {
          const eq = entry.indexOf('=');
          if (eq <= 0) throw new TypeError('each entry is COMPONENT=KEY');
          return [entry.slice(0, eq).trim(), entry.slice(eq + 1).trim()];
        });
  const trust: Record<string, string[]> = {};
  for (const [component, keys] of pairs) {
    parseComponent(component);
    try {
      trust[component] = [...new Set([...(trust[component] ?? []), ...parsePublicKeys(keys)])];
    } catch (err) {
      throw new TypeError(`${component}: ${(err as Error).message}`);
    }
  }
  return trust;
}

/**
 * Public NKeys, each checked. A seed (the secret half) given here is named as one and never shown:
 * error messages end up in logs, terminals and CI output.
 */
function parsePublicKeys(raw: unknown): string[] {
  const keys = parseList(raw);
  for (const [i, key] of keys.entries()) {
    const which = keys.length > 1 ? `the ${ordinal(i + 1)} key` : 'the key';
    if (isSeed(key)) {
      throw new TypeError(
        `${which} is an NKey seed (the secret that signs), not a public key: keep it out of this setting, and give its public key (\`nachos-sentinel pubkey SEED_FILE\` prints it)`,
      );
    }
    if (!isPublicKey(key)) {
      throw new TypeError(`${which} (${key.length} characters) is not a public NKey: the 56-character A... or U... key that \`nachos-sentinel pubkey\` prints, and the daemon logs at start as "reloads are signed"`);
    }
  }
  return [...new Set(keys)];
}

function ordinal(n: number): string {
  return n === 1 ? 'first' : n === 2 ? 'second' : n === 3 ? 'third' : `${n}th`;
}

/** Resolves `[[health.checks]]` tables (already checked against their schema) into specs. */
function parseChecks(raw: unknown): CheckSpec[] {
  if (raw === '' || raw === undefined) return [];
  const room = MAX_CHECKS - OWN_CHECK_SLOTS;
  if ((raw as unknown[]).length > room) {
    throw new TypeError(`at most ${room} checks: a heartbeat carries ${MAX_CHECKS}, ${OWN_CHECK_SLOTS} of them the sentinel's own`);
  }
  const specs = (raw as CheckSpecInput[]).map((c, i): CheckSpec => {
    const base = {
      name: c.name,
      required: c.required ?? true,
      timeoutMs: c.timeout === undefined ? DEFAULT_CHECK_TIMEOUT : parseDuration(c.timeout),
    };
    if ((OWN_CHECKS as readonly string[]).includes(c.name)) {
      throw new TypeError(`checks[${i}]: the name "${c.name}" is the sentinel's own; choose another`);
    }
    switch (c.type) {
      case 'http':
        return { ...base, type: 'http', url: c.url, expectStatus: c.expect_status ?? 200 };
      case 'tcp': {
        const at = c.address.lastIndexOf(':');
        const port = Number(c.address.slice(at + 1));
        if (port < 1 || port > 65535) throw new TypeError(`checks[${i}]: "${c.address}" has no valid port`);
        return { ...base, type: 'tcp', host: c.address.slice(0, at).replace(/^\[|\]$/g, ''), port };
      }
      case 'command':
        return {
          ...base,
          type: 'command',
          argv: typeof c.command === 'string' ? ['/bin/sh', '-c', c.command] : c.command,
          expectExit: c.expect_exit ?? 0,
        };
    }
  });
  const names = new Set<string>();
  for (const spec of specs) {
    if (names.has(spec.name)) throw new TypeError(`two checks are named "${spec.name}"; names must be unique`);
    names.add(spec.name);
  }
  return specs;
}

function parseInvalidFiles(raw: unknown): InvalidFileMode {
  const text = String(raw).trim().toLowerCase();
  if ((INVALID_FILE_MODES as readonly string[]).includes(text)) return text as InvalidFileMode;
  throw new TypeError(`"${raw}" is not a mode; use ${INVALID_FILE_MODES.join(' or ')}`);
}

function parseLogLevel(raw: unknown): LogLevel {
  const text = String(raw).trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new TypeError(`"${raw}" is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}

function parseComponent(raw: unknown): string {
  const text = parseNonEmpty(raw);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) {
    throw new TypeError(`"${text}" must be 1 to 64 letters, digits, "-" or "_" (it becomes part of subjects and ids)`);
  }
  return text;
}

/**
 * The config file's schema, built from the table: unknown keys and wrong
 * types are errors that name the key. Also published as JSON Schema.
 */
export function configFileSchema(settings: readonly Setting[] = SETTINGS) {
  const root: Record<string, TSchema> = {};
  const tables = new Map<string, Record<string, TSchema>>();
  for (const s of settings) {
    const [table, key] = s.file.includes('.') ? (s.file.split('.', 2) as [string, string]) : [undefined, s.file];
    const schema = Type.Optional({ ...s.schema, description: `${s.help} (default: ${s.defaultText || 'none'})` });
    if (table === undefined) {
      root[key] = schema;
    } else {
      if (!tables.has(table)) tables.set(table, {});
      (tables.get(table) as Record<string, TSchema>)[key] = schema;
    }
  }
  for (const [name, properties] of tables) {
    root[name] = Type.Optional(Type.Object(properties, { additionalProperties: false }));
  }
  return Type.Object(root, {
    title: 'nachos-sentinel configuration',
    additionalProperties: false,
  });
}
