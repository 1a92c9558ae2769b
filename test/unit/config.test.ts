import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve.js';
import { configFileSchema } from '../../src/config/settings.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('resolveConfig', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  const resolve = (flags: Record<string, unknown> = {}, env: Record<string, string> = {}) =>
    resolveConfig({ flags: flags as never, env, cwd: dir });
  function errorOf(fn: () => unknown): ConfigError {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected a ConfigError');
  }
  const writeConfig = (text: string, name = 'sentinel.toml') => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('has sane defaults', () => {
    expect(resolve()).toEqual({
      configFile: undefined,
      servers: ['nats://127.0.0.1:4222'],
      policies: path.join(dir, 'policies'),
      watch: [],
      allowEmpty: false,
      strictKeys: false,
      invalidFiles: 'reject-set',
      consumer: 'nachos',
      strictConsumer: false,
      quietWindowMs: 50,
      maxWaitMs: 1000,
      waitForWriters: true,
      rescanIntervalMs: 60_000,
      maxFileBytes: 1024 * 1024,
      logLevel: 'info',
      logFormat: 'auto',
      component: 'sentinel',
      healthIntervalMs: 5000,
      required: [],
      optional: [],
      maxInstances: 10_000,
      maxInstancesPerComponent: 1000,
      maxIntervalMs: 60_000,
      checks: [],
      http: { host: '127.0.0.1', port: 9470 },
      httpAllowedHosts: [],
      sidecarChecks: [],
      reloadTimeoutMs: 10_000,
      reloadHeaders: {},
      takeOver: false,
      healthTrust: {},
      publicKeys: [],
      deployment: '',
      expiresAfterMs: 24 * 3_600_000,
      maxClockSkewMs: 5 * 60_000,
      stateDir: path.join(homedir(), '.local/state/nachos-sentinel'),
      historyStore: 'local',
      historyKeep: 100,
      historyStream: 'NACHOS_POLICY_HISTORY',
      historyReplicas: 1,
      canary: [],
      bakeMs: 30_000,
    });
  });

  it('reads the history and the rollout, each bad value named', () => {
    const file = writeConfig(`[history]
dir = "state"
store = "jetstream"
keep = 500
stream = "POLICY_HISTORY"
replicas = 3

[rollout]
canary = ["gateway-canary", "gateway/gw-7"]
bake = "2m"
`);
    expect(resolve({ config: file })).toMatchObject({
      stateDir: path.join(path.dirname(file), 'state'),
      historyStore: 'jetstream',
      historyKeep: 500,
      historyStream: 'POLICY_HISTORY',
      historyReplicas: 3,
      canary: ['gateway-canary', 'gateway/gw-7'],
      bakeMs: 120_000,
    });
    expect(resolve({ 'state-dir': '~/x' }).stateDir).toBe(path.join(homedir(), 'x'));
    expect(() => resolve({ 'history-store': 'redis' })).toThrow('--history-store: must be one of local, jetstream, off');
    expect(() => resolve({ 'history-replicas': '7' })).toThrow('--history-replicas: must be 1 to 5');
    expect(() => resolve({ canary: ['gate way'] })).toThrow('--canary: "gate way" is not a component name, or component/instance');
    expect(() => resolve({ bake: '2d' })).toThrow('--bake');
  });

  it('reads the health roster, interval and checks, and the HTTP listener', () => {
    const file = writeConfig(`[health]
component = "gateway-sidecar"
interval = "200ms"
required = ["gateway", "llm-proxy"]
optional = ["slack"]

[[health.checks]]
name = "gateway-http"
type = "http"
url = "http://127.0.0.1:8081/health"
timeout = "500ms"

[[health.checks]]
name = "redis"
type = "tcp"
address = "127.0.0.1:6379"
required = false

[[health.checks]]
name = "disk"
type = "command"
command = "test -w /tmp"

[http]
listen = "off"
`);
    const config = resolve({ config: file, require: ['gateway,channel-slack'] });
    expect(config).toMatchObject({
      component: 'gateway-sidecar',
      healthIntervalMs: 200,
      required: ['gateway', 'channel-slack'],
      optional: ['slack'],
      http: null,
      checks: [
        { name: 'gateway-http', type: 'http', url: 'http://127.0.0.1:8081/health', expectStatus: 200, timeoutMs: 500, required: true },
        { name: 'redis', type: 'tcp', host: '127.0.0.1', port: 6379, required: false, timeoutMs: 2000 },
        { name: 'disk', type: 'command', argv: ['/bin/sh', '-c', 'test -w /tmp'], expectExit: 0 },
      ],
    });
    expect(resolve({ http: '0.0.0.0:0' }).http).toEqual({ host: '0.0.0.0', port: 0 });
    expect(resolve({ http: ':9999' }).http).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(resolve({ http: '[::1]:80' }).http).toEqual({ host: '::1', port: 80 });
  });

  it('refuses bad checks, naming the key', () => {
    const dup = writeConfig('[[health.checks]]\nname = "a"\ntype = "tcp"\naddress = "x:1"\n[[health.checks]]\nname = "a"\ntype = "tcp"\naddress = "y:2"\n');
    expect(errorOf(() => resolve({ config: dup })).message).toMatch(/key "health.checks": two checks are named "a"/);
    const own = writeConfig('[[health.checks]]\nname = "bus"\ntype = "tcp"\naddress = "x:1"\n', 'own.toml');
    expect(errorOf(() => resolve({ config: own })).message).toMatch(/"bus" is the sentinel's own/);
    const bad = writeConfig('[[health.checks]]\nname = "a"\ntype = "smoke"\n', 'bad.toml');
    expect(errorOf(() => resolve({ config: bad })).message).toMatch(/bad.toml:1:1: key "health.checks\[0\].type": must be one of "http", "tcp", "command", got "smoke"/);
    expect(errorOf(() => resolve({ interval: '10ms' })).message).toBe('--interval: must be at least 50ms');
    // Every interval accepted is one every heartbeat receiver accepts: whole ms, at most 1 h.
    expect(errorOf(() => resolve({ interval: '2h' })).message).toBe('--interval: must be at most 1h');
    expect(resolve({ interval: '1.001s' }).healthIntervalMs).toBe(1001);
    const many = writeConfig(
      Array.from({ length: 61 }, (_, i) => `[[health.checks]]\nname = "c${i}"\ntype = "tcp"\naddress = "x:${i + 1}"\n`).join(''),
      'many.toml',
    );
    expect(errorOf(() => resolve({ config: many })).message).toMatch(/at most 59 checks: a heartbeat carries 64, 5 of them the sentinel's own/);
    expect(errorOf(() => resolve({ http: 'localhost' })).message).toMatch(/^--http: "localhost" is not a listen address/);
  });

  it('takes servers from --servers, then NATS_SERVERS, then NATS_URL', () => {
    const env = { NATS_SERVERS: 'nats://a:1,nats://b:2', NATS_URL: 'nats://c:3' };
    expect(resolve({ servers: 'nats://x:9, nats://y:9' }, env).servers).toEqual(['nats://x:9', 'nats://y:9']);
    expect(resolve({}, env).servers).toEqual(['nats://a:1', 'nats://b:2']);
    expect(resolve({}, { NATS_URL: 'nats://c:3' }).servers).toEqual(['nats://c:3']);
  });

  it('takes the policy directory from --policies, then POLICY_PATH', () => {
    expect(resolve({ policies: 'p1' }, { POLICY_PATH: '/abs/p2' }).policies).toBe(path.join(dir, 'p1'));
    expect(resolve({}, { POLICY_PATH: '/abs/p2' }).policies).toBe('/abs/p2');
  });

  it('ranks flags over environment over the config file over defaults', () => {
    const file = writeConfig('quiet_window = "80ms"\nmax_wait = "3s"\nrescan_interval = "2m"\n');
    const config = resolve({ config: file, 'quiet-window': '10ms' }, { SENTINEL_MAX_WAIT: '2s' });
    expect(config.quietWindowMs).toBe(10);
    expect(config.maxWaitMs).toBe(2000);
    expect(config.rescanIntervalMs).toBe(120_000);
    expect(config.maxFileBytes).toBe(1024 * 1024);
    expect(config.configFile).toBe(file);
  });

  it('finds the config file through SENTINEL_CONFIG, and resolves its paths relative to itself', () => {
    const file = writeConfig('policies = "pol"\nwatch = ["../nachos.toml"]\nservers = ["nats://a:1"]\n', 'conf.toml');
    const config = resolve({}, { SENTINEL_CONFIG: file });
    expect(config.policies).toBe(path.join(dir, 'pol'));
    expect(config.watch).toEqual([path.resolve(dir, '../nachos.toml')]);
    expect(config.servers).toEqual(['nats://a:1']);
  });

  it('accepts repeated and comma-separated --watch-file values', () => {
    expect(resolve({ 'watch-file': ['a.toml', 'b.toml,c.toml'] }).watch).toEqual(['a.toml', 'b.toml', 'c.toml'].map((f) => path.join(dir, f)));
  });

  it('reads booleans from flags, environment and file', () => {
    expect(resolve({ 'allow-empty': true }).allowEmpty).toBe(true);
    expect(resolve({}, { SENTINEL_ALLOW_EMPTY: 'yes' }).allowEmpty).toBe(true);
    expect(resolve({ config: writeConfig('allow_empty = true\n') }).allowEmpty).toBe(true);
  });

  it('names the key, the file and the line of an unknown key, with a suggestion', () => {
    const file = writeConfig('servers = "nats://a:1"\n\nquiet_windw = "50ms"\n');
    const err = errorOf(() => resolve({ config: file }));
    expect(err.message).toBe(`${file}:3:1: unknown key "quiet_windw" (did you mean "quiet_window"?)`);
  });

  it('names the key, the file and the line of a bad value', () => {
    const file = writeConfig('log_level = "info"\nquiet_window = "fast"\n');
    expect(errorOf(() => resolve({ config: file })).message).toBe(
      `${file}:2:1: key "quiet_window": must be a duration such as "50ms", "5s" or "1m", got "fast"`,
    );
    const typed = writeConfig('allow_empty = "yes"\n', 'b.toml');
    expect(errorOf(() => resolve({ config: typed })).message).toBe(`${typed}:1:1: key "allow_empty": must be true or false, got "yes"`);
  });

  it('names the flag or the variable a bad value came from', () => {
    expect(errorOf(() => resolve({ 'max-file-size': 'huge' })).message).toMatch(/^--max-file-size: "huge" is not a size/);
    expect(errorOf(() => resolve({}, { LOG_LEVEL: 'loud' })).message).toMatch(/^environment variable LOG_LEVEL: "loud" is not a log level/);
    expect(errorOf(() => resolve({ servers: 'http://x:1' })).message).toMatch(/unsupported scheme "http:\/\/"/);
    expect(errorOf(() => resolve({ component: 'a.b' })).message).toMatch(/^--component: "a.b" must be/);
  });

  it('reports TOML syntax errors in the config file with line and column, and a missing file', () => {
    const file = writeConfig('servers = [\n');
    expect(errorOf(() => resolve({ config: file })).message).toMatch(new RegExp(`^${file}:2:1: TOML syntax`));
    expect(errorOf(() => resolve({ config: path.join(dir, 'nope.toml') })).message).toMatch(/config file not found/);
  });

  it('publishes a JSON Schema that forbids unknown keys', () => {
    const schema = configFileSchema() as { additionalProperties: boolean; properties: Record<string, { description?: string }> };
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toContain('quiet_window');
    expect(schema.properties.quiet_window?.description).toMatch(/default: 50ms/);
  });
});

describe('trust settings (issue 16)', () => {
  const { dir, cleanup } = tempDir();
  afterEach(() => undefined);
  const resolve = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => resolveConfig({ flags: flags as never, env, cwd: dir });
  const pub = 'ACUSG5KPKG5CRRAPSNYXKMVKOVWHY6J2BBOJP6HHDYZADJE36A7T3N46';

  it('reads heartbeat keys from flags, the variable and [health.trust], each key checked', () => {
    expect(resolve({ 'heartbeat-key': [`gateway=${pub}`] }).healthTrust).toEqual({ gateway: [pub] });
    expect(resolve({}, { SENTINEL_HEARTBEAT_KEYS: `gateway=${pub},llm-proxy=${pub}` }).healthTrust).toEqual({ gateway: [pub], 'llm-proxy': [pub] });
    const file = path.join(dir, 'trust.toml');
    writeFileSync(file, `[health.trust]\ngateway = ["${pub}"]\n\n[trust]\ndeployment = "prod"\nkeys = ["${pub}"]\nexpires_after = "12h"\n`);
    expect(resolve({ config: file })).toMatchObject({ healthTrust: { gateway: [pub] }, deployment: 'prod', publicKeys: [pub], expiresAfterMs: 12 * 3_600_000 });
    expect(() => resolve({ 'heartbeat-key': ['gateway'] })).toThrow(/--heartbeat-key: each entry is COMPONENT=KEY/);
    expect(() => resolve({ 'heartbeat-key': ['gateway=NOTAKEY'] })).toThrow(/--heartbeat-key: gateway: the key \(7 characters\) is not a public NKey/);
    cleanup();
  });

  it('takes reload headers as "Name: value", and never shows a value in an error', () => {
    expect(resolve({ 'reload-header': ['Authorization: Bearer x:y', 'X-Extra:1'] }).reloadHeaders).toEqual({ Authorization: 'Bearer x:y', 'X-Extra': '1' });
    expect(() => resolve({ 'reload-header': ['no colon here'] })).toThrow(/a header is "Name: value"/);
    expect(() => resolve({ 'reload-header': ['Bad Name: s3cret'] })).toThrow(/"Bad Name" is not a header name/);
    expect(() => resolve({ 'reload-url': 'https://gw/reload?token=s3cret', 'reload-header': ['Authorization: s3cret'] })).not.toThrow();
    try {
      resolve({ 'reload-url': 'ftp://u:s3cret@gw/?token=s3cret' });
    } catch (err) {
      expect((err as Error).message).not.toContain('s3cret');
    }
  });
});
