import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { checksFromUrls, nameChecks, UNNAMED, type CheckSpec } from '../../src/health/check-specs.js';
import { CheckRunner, configuredCheck, failureReason, timeoutReason, withFailure } from '../../src/health/checks.js';

/** Whether a process whose command line contains `text` runs. */
function running(text: string): boolean {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

describe('CheckRunner', () => {
  it('cuts off the checks in flight when stopped, killing the whole command, and runs no more', { timeout: 5000 }, async () => {
    // A shell and its child, each findable: the shell by a marker, the sleep by its odd duration.
    const sleep = `sleep 29.${process.pid % 1000}${Date.now() % 1000}`;
    const shell = `${sleep}; : sentinel-check-${process.pid}`;
    let changes = 0;
    const runner = new CheckRunner(
      [configuredCheck({ type: 'command', name: 'slow', required: true, timeoutMs: 20_000, argv: ['/bin/sh', '-c', shell], expectExit: 0 })],
      () => changes++,
    );
    const run = runner.runAll();
    while (!running(sleep)) await new Promise((r) => setTimeout(r, 20));
    runner.stop();
    // Without stop() this would wait for the 20 s timeout, past the test's own 5 s.
    await run;
    expect(running(shell)).toBe(false);
    expect(running(sleep)).toBe(false);
    expect(changes).toBe(0);
    expect(runner.complete).toBe(false);
    await runner.runAll();
    expect(runner.complete).toBe(false);
  });

  it('weighs a failure by whether the check is required', () => {
    expect(withFailure('healthy', true)).toBe('unhealthy');
    expect(withFailure('healthy', false)).toBe('degraded');
    expect(withFailure('degraded', false)).toBe('degraded');
    expect(withFailure('unhealthy', false)).toBe('unhealthy');
  });
});

describe('a neighbour that answers with a Nachos HealthCheck', () => {
  /** One HTTP check against a server answering `body` with `status` and `type`. */
  async function snapshotOf(status: number, body: string, type = 'application/json') {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => res.writeHead(status, { 'content-type': type }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const runner = new CheckRunner([configuredCheck({ type: 'http', name: 'gateway', required: true, timeoutMs: 2000, url: `http://127.0.0.1:${port}/health`, expectStatus: 200 })]);
      await runner.runAll();
      return runner.snapshot();
    } finally {
      server.close();
    }
  }
  const report = (status: string, checks: Record<string, unknown>, facts: Record<string, unknown> = { version: '1', uptime: 1 }) =>
    JSON.stringify({ status, component: 'gateway', ...facts, checks });

  it('takes over its status and checks, at any status code', async () => {
    expect(await snapshotOf(503, report('unhealthy', { llm: 'error', database: 'ok' }))).toMatchObject({
      status: 'unhealthy',
      checks: { gateway: 'ok', llm: 'error', database: 'ok' },
      details: { gateway: { message: 'HTTP 503: reports unhealthy' }, llm: { message: 'reported by gateway' } },
    });
    // Nachos answers 503 when degraded too: degraded it is, not unhealthy.
    expect((await snapshotOf(503, report('degraded', { bus: 'error' }))).status).toBe('degraded');
    expect((await snapshotOf(200, report('healthy', { bus: 'ok' }))).status).toBe('healthy');
  });

  it('takes nothing from a body that is not one, or that would not fit a heartbeat', async () => {
    expect(await snapshotOf(503, 'Service Unavailable', 'text/plain')).toMatchObject({ status: 'unhealthy', checks: { gateway: 'error' } });
    expect(await snapshotOf(200, JSON.stringify({ status: 'great', component: 'gateway', checks: {} }))).toMatchObject({ status: 'healthy', checks: { gateway: 'ok' } });
    expect(await snapshotOf(503, report('unhealthy', { x: 'error' }).padEnd(70_000, ' '))).toMatchObject({ status: 'unhealthy', checks: { gateway: 'error' } });
    // A flood of names: a bounded number, each of a bounded length, and only ok or error.
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`c${i}`, i % 2 ? 'ok' : 'error']));
    const flooded = await snapshotOf(503, report('unhealthy', { ...many, ['x'.repeat(100)]: 'error', weird: 'maybe' }));
    expect(Object.keys(flooded.checks).length).toBeLessThanOrEqual(1 + 32);
    expect(Object.keys(flooded.checks).every((k) => k.length <= 48)).toBe(true);
    expect(flooded.checks.weird).toBeUndefined();
  });

  it('keeps its version (bounded, printable) and uptime (finite, not negative), at any status code, and nothing else of the kind', async () => {
    expect((await snapshotOf(200, report('healthy', { bus: 'ok' }, { version: '1.4.2', uptime: 3600 }))).neighbour).toEqual({ version: '1.4.2', uptime: 3600 });
    expect((await snapshotOf(503, report('unhealthy', { bus: 'error' }, { version: '1.4.2', uptime: 0 }))).neighbour).toEqual({ version: '1.4.2', uptime: 0 });
    expect((await snapshotOf(200, report('healthy', {}, { version: 'v'.repeat(100), uptime: 1.5 }))).neighbour).toEqual({ version: 'v'.repeat(64), uptime: 1.5 });
    expect((await snapshotOf(200, report('healthy', {}, { version: 'a\nb', uptime: -1 }))).neighbour).toEqual({});
    expect((await snapshotOf(200, report('healthy', {}, { version: 7, uptime: '12' }))).neighbour).toEqual({});
    expect((await snapshotOf(200, report('healthy', {}, { version: '', uptime: 1e999 }))).neighbour).toEqual({});
    expect((await snapshotOf(200, report('healthy', {}, {}))).neighbour).toEqual({});
    // Not a HealthCheck: nothing of it is taken, whatever fields it has.
    expect((await snapshotOf(200, JSON.stringify({ version: '9', uptime: 9 }))).neighbour).toEqual({});
  });
});

/** An HTTP server answering each request with `handler`, on a free port of 127.0.0.1; closed by the test. */
async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<Server & { port: number }> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

/** A port of 127.0.0.1 nobody listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The one result of running `spec` once. */
async function runOnce(spec: CheckSpec) {
  const runner = new CheckRunner([configuredCheck(spec)]);
  await runner.runAll();
  return runner.snapshot().details[spec.name];
}

const http = (url: string, timeoutMs = 2000): CheckSpec => ({ type: 'http', name: 'gateway', required: true, timeoutMs, url, expectStatus: 200 });

describe('an HTTP check without fetch', () => {
  it('runs over node:http: fetch (undici, about 16 MB more in every sidecar) is never loaded', async () => {
    const server = await httpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'healthy', component: 'gateway', checks: { bus: 'ok' } })));
    const original = globalThis.fetch;
    globalThis.fetch = () => Promise.reject(new Error('fetch was called'));
    try {
      expect((await runOnce(http(`http://127.0.0.1:${server.port}/health`)))?.message).toBeUndefined();
      // A redirect is an answer, never followed (as fetch's redirect: manual).
      const moved = await httpServer((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${server.port}/health` }).end());
      expect((await runOnce(http(`http://127.0.0.1:${moved.port}/health`)))?.message).toBe('HTTP 302, expected 200');
      moved.close();
    } finally {
      globalThis.fetch = original;
      server.close();
    }
  });
});

describe("a check's failure, in the operating system's words", () => {
  it('says a refused connection as the system does, for HTTP and TCP alike, not "fetch failed"', async () => {
    const port = await closedPort();
    expect((await runOnce(http(`http://127.0.0.1:${port}/health`)))?.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
    expect((await runOnce({ type: 'tcp', name: 'gateway', required: true, timeoutMs: 2000, host: '127.0.0.1', port }))?.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('says a check cut off by its timeout as "timeout after" the timeout, written as people write it', async () => {
    const hanging = await httpServer(() => undefined);
    try {
      expect((await runOnce(http(`http://127.0.0.1:${hanging.port}/health`, 300)))?.message).toBe('timeout after 300ms');
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
    expect([2000, 500, 1500, 60_000, 90_000, 250.4].map(timeoutReason)).toEqual([
      'timeout after 2s',
      'timeout after 500ms',
      'timeout after 1.5s',
      'timeout after 1m',
      'timeout after 1m30s',
      'timeout after 250ms',
    ]);
  });

  it('says what fetch keeps in its cause (a name not found, an aggregate of attempts), and the status of a reply that is not a HealthCheck', async () => {
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND gateway'), { code: 'ENOTFOUND' });
    expect(failureReason(new TypeError('fetch failed', { cause: notFound }))).toBe('getaddrinfo ENOTFOUND gateway');
    const attempts = new AggregateError([new Error('connect ECONNREFUSED ::1:8081'), new Error('connect ECONNREFUSED 127.0.0.1:8081')], '');
    expect(failureReason(new TypeError('fetch failed', { cause: attempts }))).toBe('connect ECONNREFUSED ::1:8081; connect ECONNREFUSED 127.0.0.1:8081');
    expect(failureReason(Object.assign(new Error(''), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    const plain = await httpServer((_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable'));
    try {
      expect((await runOnce(http(`http://127.0.0.1:${plain.port}/health`)))?.message).toBe('HTTP 503, expected 200');
    } finally {
      plain.close();
    }
  });

  it("never says a URL's query values or credentials, even where fetch names the URL", async () => {
    const port = await closedPort();
    const withQuery = await runOnce(http(`http://127.0.0.1:${port}/health?token=s3cr3t`));
    expect(withQuery?.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
    // A [[health.checks]] URL is not refused for its credentials when configured; the request refuses it, naming it whole.
    const withUser = await runOnce(http(`http://user:pa55@127.0.0.1:${port}/health?token=s3cr3t`));
    expect(withUser?.message).toMatch(/credentials/);
    expect(withUser?.message).not.toMatch(/pa55|s3cr3t|user/);
    expect(withUser?.message).toContain(`http://***@127.0.0.1:${port}/health?token=***`);
  });
});

describe('--check [NAME=]URL', () => {
  it('names a check NAME=, leaves one without a name to be named after the component, and reads the = of a query as part of the URL', () => {
    const specs = checksFromUrls(['gw=http://gateway:8081/health', 'http://gateway:8081/health?a=b', 'tcp://gateway:8081', ' db = tcp://db:5432']);
    expect(specs.map((s) => s.name)).toEqual(['gw', UNNAMED, UNNAMED, 'db']);
    expect(specs[0]).toMatchObject({ type: 'http', url: 'http://gateway:8081/health', required: true, timeoutMs: 2000, expectStatus: 200 });
    expect(specs[1]).toMatchObject({ type: 'http', url: 'http://gateway:8081/health?a=b' });
    expect(specs[3]).toMatchObject({ type: 'tcp', host: 'db', port: 5432 });
  });

  it('names the unnamed after the component (gateway, gateway-2, gateway-3), passing over names taken', () => {
    const specs = checksFromUrls(['http://a/health', 'gateway-2=http://b/health', 'http://c/health', 'tcp://d:1']);
    expect(nameChecks(specs, 'gateway').map((s) => s.name)).toEqual(['gateway', 'gateway-2', 'gateway-3', 'gateway-4']);
    expect(nameChecks(checksFromUrls(['gateway=http://a/', 'http://b/']), 'gateway').map((s) => s.name)).toEqual(['gateway', 'gateway-2']);
    // A component's name made a check name; one of the sentinel's own names is passed over.
    expect(nameChecks(checksFromUrls(['http://a/']), 'Web.API:v2')[0]?.name).toBe('web_api_v2');
    expect(nameChecks(checksFromUrls(['http://a/']), 'sidecar')[0]?.name).toBe('sidecar-2');
    expect(nameChecks(checksFromUrls(['http://a/']), 'x'.repeat(64))[0]?.name).toMatch(/^x{44}$/);
    // Named ones are returned as they are, and the specs given are not changed.
    const given = checksFromUrls(['http://a/']);
    nameChecks(given, 'gateway');
    expect(given[0]?.name).toBe(UNNAMED);
  });

  it('refuses a bad name, one of the sentinel\'s own, or one given twice, naming it; and a check left unnamed is never run', () => {
    expect(() => checksFromUrls(['Gateway!=http://a/'])).toThrow(new TypeError('"Gateway!" is not a check name: write 1 to 48 of a-z, 0-9, _ and - (--check NAME=URL)'));
    expect(() => checksFromUrls(['=http://a/'])).toThrow(/^"" is not a check name/);
    expect(() => checksFromUrls([`${'n'.repeat(49)}=http://a/`])).toThrow(/is not a check name/);
    expect(() => checksFromUrls(['bus=http://a/'])).toThrow(new TypeError('the check name "bus" is the sentinel\'s own; choose another'));
    expect(() => checksFromUrls(['sidecar=http://a/'])).toThrow(/"sidecar" is the sentinel's own/);
    expect(() => checksFromUrls(['gw=http://a/', 'gw=tcp://b:1'])).toThrow(new TypeError('two checks are named "gw"; names must be unique'));
    expect(() => configuredCheck(checksFromUrls(['http://a/'])[0] as CheckSpec)).toThrow(/no name/);
  });

  it('still refuses a URL with a user or password, named or not, without showing the password', () => {
    for (const entry of ['http://user:pa55@gateway/health', 'gw=http://user:pa55@gateway/health']) {
      expect(() => checksFromUrls([entry])).toThrow(/^http:\/\/\*\*\*@gateway\/health carries a user name or password/);
    }
  });
});
