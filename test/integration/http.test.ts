import { createServer } from 'node:net';
import { describe, expect } from 'vitest';
import { MAX_STREAM_CLIENTS } from '../../src/http/status-feed.js';
import { Daemon } from '../helpers/daemon.js';
import { it, type Running } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { until } from '../helpers/until.js';

describe('the HTTP listener', () => {
  const url = (running: Running, p: string) =>
    `http://127.0.0.1:${running.sentinel.httpAddress?.port}${p}`;

  it('serves liveness and readiness, and only reads', async ({ dir, sentinel, startServer }) => {
    const server = await startServer();
    const running = await sentinel({ servers: server.url, policies: dir, interval: '200ms' });
    await running.connected();

    const live = await fetch(url(running, '/healthz'));
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'alive', heartbeatLoop: { lastTurnAgoMs: expect.any(Number) } });

    const ready = await fetch(url(running, '/readyz'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      bus: { connected: true, server: expect.stringContaining('127.0.0.1') },
      policy: { revision: running.sentinel.reloader.inForce?.revision, rejected: false },
    });

    expect((await fetch(url(running, '/readyz'), { method: 'POST' })).status).toBe(405);
    expect((await fetch(url(running, '/readyz'), { method: 'HEAD' })).status).toBe(200);
    const missing = await fetch(url(running, '/nope'));
    expect(missing.status).toBe(404);

    // Not ready without the bus; still alive.
    await server.kill();
    await until(async () => (await fetch(url(running, '/readyz'))).status === 503, 5000, 'not ready');
    expect((await fetch(url(running, '/healthz'))).status).toBe(200);
  });

  it('keeps at most MAX_STREAM_CLIENTS status pages open; the next one is told to come back', async ({ dir, defer, sentinel }) => {
    const running = await sentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir });
    const pages: AbortController[] = [];
    defer(() => pages.forEach((p) => p.abort()));
    const open = async () => {
      const page = new AbortController();
      const res = await fetch(url(running, '/events'), { signal: page.signal });
      pages.push(page);
      return res;
    };
    for (let i = 0; i < MAX_STREAM_CLIENTS; i++) expect((await open()).status).toBe(200);
    const refused = await open();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    // A page closed makes room for another.
    pages[0]?.abort();
    await until(async () => (await open()).status === 200, 5000, 'room for a new page');
  });

  it('binds loopback by default, and runs on (saying so) when its port is taken', async ({ dir, defer, sentinel }) => {
    const busy = createServer();
    const port = await freePort();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => busy.close(r)));
    const running = await sentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir, http: `:${port}` });
    expect(running.sentinel.httpAddress).toBeUndefined();
    expect(running.lines.find((l) => String(l.msg).startsWith('HTTP listener could not start'))).toMatchObject({
      listen: `127.0.0.1:${port}`,
    });
    expect(running.sentinel.reloader.inForce).toBeDefined();

    const off = await sentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir, http: 'off' });
    expect(off.sentinel.http).toBeUndefined();
  });
});

describe('secrets on the HTTP listener', () => {
  it('shows no credential anywhere: page, script, status, events, metrics, probes, logs', async ({ startServer, dir, daemon: start }) => {
    const secret = 's3cr3t-pw-7731';
    const server = await startServer({ args: ['--user', 'alice', '--pass', secret] });
    const port = await freePort();
    const url = `nats://alice:${secret}@127.0.0.1:${server.port}`;
    const daemon = start(['--servers', url, '--policies', dir, '--interval', '200ms', '--http', `127.0.0.1:${port}`, '--log-level', 'trace']);
    await daemon.waitForLog((l) => l.msg === 'connected to the bus');
    const base = `http://127.0.0.1:${port}`;
    const bodies: string[] = [];
    for (const route of ['/', '/app.js', '/status.json', '/metrics', '/healthz', '/readyz']) {
      const res = await fetch(`${base}${route}`);
      expect(res.status, route).toBe(200);
      bodies.push(await res.text());
    }
    const events = await fetch(`${base}/events`);
    const reader = events.body?.getReader();
    bodies.push(new TextDecoder().decode((await reader?.read())?.value));
    await reader?.cancel();
    const probe = await Daemon.run(['--once', '--json', '--servers', url]);
    bodies.push(probe.stdout, probe.stderr);
    const self = await Daemon.run(['--once', '--self', '--json', '--http', `127.0.0.1:${port}`]);
    bodies.push(self.stdout);
    await daemon.stop();
    bodies.push(daemon.stdout, daemon.stderr);
    for (const body of bodies) expect(body).not.toContain(secret);
    expect(bodies.join('')).toContain(`127.0.0.1:${server.port}`);
  });
});
