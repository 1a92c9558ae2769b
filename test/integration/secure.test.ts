import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { Daemon } from '../helpers/daemon.js';
import { it } from '../helpers/fixtures.js';
import { freePort, type NatsServer } from '../helpers/nats-server.js';
import { policyText } from '../helpers/policy-files.js';
import { makeJwtChain, makeNkeyUser, makeTlsFiles } from '../helpers/secure.js';
import { startSentinel } from '../helpers/sentinel.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { BusAuth } from '../../src/config/auth-settings.js';
import { probeView } from '../../src/cli/probe/probe-bus.js';
import { until } from '../helpers/until.js';

/**
 * Against real nats-servers configured for each way of securing the bus:
 * the daemon connects and announces, the probe gets through with the same
 * settings, a wrong credential is an error that says so, and no secret is
 * ever printed.
 */
describe('a secured bus', () => {
  let root: string;
  let dir: string;
  let keys: string;
  let cleanup: () => void;
  let tls: ReturnType<typeof makeTlsFiles>;

  beforeAll(() => {
    ({ dir: root, cleanup } = tempDir());
    dir = path.join(root, 'policies');
    keys = path.join(root, 'keys');
    mkdirSync(dir);
    mkdirSync(keys);
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
    tls = makeTlsFiles(keys);
  });
  afterAll(() => cleanup());

  /** Runs the in-process daemon with `flags`, waits for its first announcement; returns what it logged. */
  async function daemonConnects(server: NatsServer, flags: Record<string, string>) {
    const running = await startSentinel({ servers: server.url, policies: dir, interval: '200ms', ...flags }, root);
    try {
      await running.connected();
      await until(() => running.sentinel.announcer.announced, 5000, 'the startup announcement');
      return running.lines;
    } finally {
      await running.close();
    }
  }

  /**
   * The probe over the bus, configured by `env` only (the names NATS tooling uses).
   * After `daemonConnects` the daemon is gone: "no sentinel answered" then proves the
   * probe connected and was let in, and got as far as asking.
   */
  const probe = (server: NatsServer, env: Record<string, string>, args: string[] = []) =>
    Daemon.run(['--once', '--servers', server.url, '--timeout', '3s', ...args], env);

  /**
   * The probe asks through its own protocol path and through the NATS client, with the same settings:
   * the same view when it gets one, and the same words when it does not.
   */
  async function bothWays(server: NatsServer, auth: BusAuth, servers = [server.url], { osWords = true } = {}) {
    const options = { auth, self: false, component: undefined, strict: false, json: false, timeoutMs: 3000, servers, http: null };
    // With osWords false, only what the probe says, not the system's words after it: a TLS handshake the
    // server turns down ends with its alert or with a reset, whichever the socket reads first.
    const words = (message: string) => (osWords ? message.replace(/\(.*\)/, '(...)') : message.replace(/^(bus unreachable at \S+): .*$/s, '$1: ...'));
    const settle = (via: 'wire' | 'client') =>
      probeView(options, via).then(
        (view) => ({ status: view.status, components: view.components.map((c) => [c.name, c.status]) }),
        (err: Error) => ({ error: words(err.message) }),
      );
    const wire = await settle('wire');
    expect(wire).toEqual(await settle('client'));
    return wire;
  }

  it('user and password, from the environment', async ({ startServer }) => {
    const server = await startServer({ config: 'authorization { user: alice, password: "pw-0451" }\n' });
    let running: Awaited<ReturnType<typeof startSentinel>> | undefined;
    try {
      const env = { NATS_USER: 'alice', NATS_PASSWORD: 'pw-0451' };
      running = await startSentinel({ servers: server.url, policies: dir, interval: '200ms', user: 'alice', password: 'pw-0451' }, root);
      await running.connected();
      // The probe, as another container would run it: components answered, status printed.
      const ok = await until(async () => {
        const r = await probe(server, env, ['--json']);
        return r.stdout.includes('"sentinel"') ? r : undefined;
      }, 10_000, 'the probe through the secured bus');
      expect(ok.stderr).toBe('');
      expect(await bothWays(server, { user: 'alice', password: 'pw-0451' })).toMatchObject({ status: 'healthy', components: [['sentinel', 'healthy']] });
      // In the URL, as the NATS CLI takes it.
      expect(await bothWays(server, {}, [server.url.replace('nats://', 'nats://alice:pw-0451@')])).toMatchObject({ status: 'healthy' });
      expect(await bothWays(server, { user: 'alice', password: 'nope-9' })).toEqual({ error: expect.stringMatching(/refused the credentials/) });
      expect(await bothWays(server, {})).toEqual({ error: expect.stringMatching(/wants credentials, and none were given/) });
      await running.close();
      expect(JSON.stringify(running.lines)).not.toContain('pw-0451');

      const wrong = await probe(server, { NATS_USER: 'alice', NATS_PASSWORD: 'nope-9' });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/refused the credentials \(.*Authorization Violation.*\); check the user\/password/i);
      expect(wrong.stderr).not.toContain('nope-9');
      // No credentials at all: said as such (it once said "check none").
      const none = await probe(server, {});
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/wants credentials, and none were given: --user and --password, --token, --nkey, --creds/);
    } finally {
      await running?.close();
    }
  });

  it('a user the bus does not let ask: said the same way through both paths', async ({ startServer }) => {
    const server = await startServer({
      config: `authorization { users = [ { user: carol, password: "pw-1177", permissions: { publish: { deny: ["nachos.system.health.status"] } } } ] }\n`,
    });
    const answer = await bothWays(server, { user: 'carol', password: 'pw-1177' });
    expect(answer).toEqual({ error: expect.stringMatching(/permissions violation/i) });
  });

  it('a token, from a flag', async ({ startServer }) => {
    const server = await startServer({ config: 'authorization { token: "tok-8812" }\n' });
    const lines = await daemonConnects(server, { token: 'tok-8812' });
    expect(lines.find((l) => l.msg === 'connected to the bus')).toMatchObject({ auth: 'token' });
    expect(JSON.stringify(lines)).not.toContain('tok-8812');
    expect((await probe(server, {}, ['--token', 'tok-8812'])).stderr).toMatch(/no sentinel answered/);
    expect(await bothWays(server, { token: 'tok-8812' })).toEqual({ error: expect.stringMatching(/^no sentinel answered/) });
    expect(await bothWays(server, { token: 'tok-0000' })).toEqual({ error: expect.stringMatching(/refused the credentials/) });
    // A server of the list that is down: the next one is asked.
    expect(await bothWays(server, { token: 'tok-8812' }, [`nats://127.0.0.1:${await freePort()}`, server.url])).toEqual({ error: expect.stringMatching(/^no sentinel answered/) });
    const wrong = await probe(server, {}, ['--token', 'tok-0000']);
    expect(wrong.stderr).toMatch(/refused the credentials \(.*Authorization Violation.*\); check the token/i);
    expect(wrong.stderr).not.toContain('tok-');
  });

  it('an NKey seed file, from the config file', async ({ startServer }) => {
    const user = makeNkeyUser(keys);
    const server = await startServer({ config: `authorization { users = [ { nkey: ${user.publicKey} } ] }\n` });
    const config = path.join(root, 'nkey.toml');
    writeFileSync(config, `[auth]\nnkey = "keys/user.nk"\n`);
    const lines = await daemonConnects(server, { config });
    expect(lines.find((l) => l.msg === 'connected to the bus')).toMatchObject({ auth: 'nkey' });
    expect(JSON.stringify(lines)).not.toContain(user.seed);
    const r = await probe(server, { SENTINEL_CONFIG: config });
    expect(r.stderr).toMatch(/no sentinel answered/);
    expect(await bothWays(server, { nkey: user.seedFile })).toEqual({ error: expect.stringMatching(/^no sentinel answered/) });
    expect(r.stdout + r.stderr).not.toContain(user.seed);
    // A key the server does not know: refused, and said so.
    const stranger = makeNkeyUser(keys, 'stranger.nk');
    const wrong = await probe(server, { NATS_NKEY: stranger.seedFile });
    expect(wrong.stderr).toMatch(/refused the credentials \(.*Authorization Violation.*\); check the nkey/i);
    expect(wrong.stderr).not.toContain(stranger.seed);
    expect(await bothWays(server, { nkey: stranger.seedFile })).toEqual({ error: expect.stringMatching(/refused the credentials/) });
  });

  it('a credentials file with a JWT, from NATS_CREDS', async ({ startServer }) => {
    const chain = await makeJwtChain(keys);
    const server = await startServer({ config: chain.serverConfig });
    let running: Awaited<ReturnType<typeof startSentinel>> | undefined;
    try {
      running = await startSentinel({ servers: server.url, policies: dir, interval: '200ms', creds: chain.credsFile }, root);
      await running.connected();
      const r = await until(async () => {
        const out = await probe(server, { NATS_CREDS: chain.credsFile }, ['--component', 'sentinel']);
        return out.code === 0 ? out : undefined;
      }, 10_000, 'the probe with creds');
      expect(await bothWays(server, { creds: chain.credsFile })).toMatchObject({ status: expect.any(String), components: expect.arrayContaining([['sentinel', 'healthy']]) });
      expect(await bothWays(server, {})).toEqual({ error: expect.stringMatching(/wants credentials/) });
      await running.close();
      const printed = JSON.stringify(running.lines) + r.stdout + r.stderr;
      expect(printed).not.toContain(chain.userSeed);
      expect(printed).not.toContain(chain.userJwt);
    } finally {
      await running?.close();
    }
  });

  it('TLS with a CA, from the config file', async ({ startServer }) => {
    const server = await startServer({ config: `tls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}" }\n` });
    const config = path.join(root, 'tls.toml');
    writeFileSync(config, `[tls]\nca = "keys/ca.pem"\n`);
    const lines = await daemonConnects(server, { config });
    expect(lines.some((l) => l.msg === 'connected to the bus')).toBe(true);
    // Without the CA, the server's certificate is not trusted: a clear failure, not a hang.
    const untrusted = await probe(server, {});
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/bus unreachable at .*(certificate|self-signed|issuer)/i);
    expect((await probe(server, { NATS_CA: tls.ca })).stderr).toMatch(/no sentinel answered/);
    expect(await bothWays(server, { tlsCa: tls.ca })).toEqual({ error: expect.stringMatching(/^no sentinel answered/) });
    expect(await bothWays(server, {}, [server.url.replace('nats://', 'tls://')])).toEqual({ error: expect.stringMatching(/^bus unreachable/) });
  });

  it('mutual TLS, from NATS_CA, NATS_CERT and NATS_KEY; a client without a certificate is turned away', async ({ startServer }) => {
    const server = await startServer({
      config: `tls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", ca_file: "${tls.ca}", verify: true }\n`,
    });
    const port = await freePort();
    const env = { NATS_URL: server.url, POLICY_PATH: dir, NATS_CA: tls.ca, NATS_CERT: tls.clientCert, NATS_KEY: tls.clientKey };
    const daemon = Daemon.start(['--interval', '200ms', '--http', `127.0.0.1:${port}`], env);
    try {
      await daemon.waitForLog((l) => l.msg === 'connected to the bus');
      expect((await probe(server, { NATS_CA: tls.ca, NATS_CERT: tls.clientCert, NATS_KEY: tls.clientKey })).stderr).toBe('');
      expect(await bothWays(server, { tlsCa: tls.ca, tlsCert: tls.clientCert, tlsKey: tls.clientKey })).toMatchObject({ status: 'healthy' });
      expect(await bothWays(server, { tlsCa: tls.ca }, [server.url], { osWords: false })).toEqual({ error: `bus unreachable at ${server.url}: ...` });
      const noCert = await probe(server, { NATS_CA: tls.ca });
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toMatch(/unreachable|refused/);
      // A half-configured client certificate is a configuration error naming both settings.
      const half = await Daemon.run(['--tls-cert', tls.clientCert], { NATS_URL: server.url, POLICY_PATH: dir });
      expect(half.code).toBe(2);
      expect(half.stderr).toContain('give both --tls-cert and --tls-key');
    } finally {
      await daemon.stop();
    }
  });

  it('says plainly when the bus refuses the daemon, and never prints the secret', async ({ startServer }) => {
    const server = await startServer({ config: 'authorization { user: alice, password: "right-7720" }\n' });
    const daemon = Daemon.start(['--interval', '200ms'], { NATS_URL: server.url, POLICY_PATH: dir, NATS_USER: 'alice', NATS_PASSWORD: 'wrong-3391' });
    try {
      const refused = await daemon.waitForLog((l) => String(l.msg).startsWith('the bus refused our credentials'), 10_000);
      expect(refused).toMatchObject({ level: 'error', auth: 'user/password', error: expect.stringMatching(/Authorization Violation/i) });
      const stopped = await daemon.stop();
      expect(stopped.code).toBe(0);
      expect(daemon.stdout + daemon.stderr).not.toContain('wrong-3391');
      expect(daemon.logs.some((l) => l.msg === 'bus not reachable yet; retrying (the bus must start first)')).toBe(false);
    } finally {
      daemon.kill();
    }
  });

  it('refuses two ways of authenticating at once, naming them', async () => {
    const r = await Daemon.run(['--token', 't', '--user', 'u', '--password', 'p', '--policies', dir, '--servers', 'nats://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'nachos-sentinel: authentication: use one way to authenticate, not user/password (--user, --password) and token (--token)\n',
    );
  });
});
