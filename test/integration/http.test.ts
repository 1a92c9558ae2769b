import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_STREAM_CLIENTS } from '../../src/http/status-feed.js';
import { Daemon } from '../helpers/daemon.js';
import { NatsServer, freePort } from '../helpers/nats-server.js';
import { policyDir } from '../helpers/policy-files.js';
import { startSentinel } from '../helpers/sentinel.js';
import { until } from '../helpers/until.js';

describe('the HTTP listener', () => {
  let root: string;
  let dir: string;
  let cleanup: () => void;
  const stops: (() => unknown)[] = [];

  beforeEach(() => {
    ({ root, dir, cleanup } = policyDir());
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    cleanup();
  });

  const url = (running: Awaited<ReturnType<typeof startSentinel>>, p: string) =>
    `http://127.0.0.1:${running.sentinel.httpAddress?.port}${p}`;

  it('serves liveness and readiness, and only reads', async () => {
    const server = await NatsServer.start();
    stops.push(() => server.stop());
    const running = await startSentinel({ servers: server.url, policies: dir, interval: '200ms' }, root);
    stops.push(() => running.close());
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

  it('keeps at most MAX_STREAM_CLIENTS status pages open; the next one is told to come back', async () => {
    const running = await startSentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir }, root);
    stops.push(() => running.close());
    const pages: AbortController[] = [];
    stops.push(() => pages.forEach((p) => p.abort()));
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

  it('binds loopback by default, and runs on (saying so) when its port is taken', async () => {
    const busy = createServer();
    const port = await freePort();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', () => r()));
    stops.push(() => new Promise((r) => busy.close(r)));
    const running = await startSentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir, http: `:${port}` }, root);
    stops.push(() => running.close());
    expect(running.sentinel.httpAddress).toBeUndefined();
    expect(running.lines.find((l) => String(l.msg).startsWith('HTTP listener could not start'))).toMatchObject({
      listen: `127.0.0.1:${port}`,
    });
    expect(running.sentinel.reloader.inForce).toBeDefined();

    const off = await startSentinel({ servers: `nats://127.0.0.1:${await freePort()}`, policies: dir, http: 'off' }, root);
    stops.push(() => off.close());
    expect(off.sentinel.http).toBeUndefined();
  });
});

describe('secrets on the HTTP listener', () => {
  it('shows no credential anywhere: page, script, status, events, metrics, probes, logs', async () => {
    const secret = 's3cr3t-pw-7731';
    const server = await NatsServer.start({ args: ['--user', 'alice', '--pass', secret] });
    const { dir, cleanup } = policyDir();
    const port = await freePort();
    const url = `nats://alice:${secret}@127.0.0.1:${server.port}`;
    const daemon = Daemon.start(['--servers', url, '--policies', dir, '--interval', '200ms', '--http', `127.0.0.1:${port}`, '--log-level', 'trace']);
    try {
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
    } finally {
      daemon.kill();
      await server.stop();
      cleanup();
    }
  });
});
