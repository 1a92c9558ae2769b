import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NatsServer, freePort } from '../helpers/nats-server.js';
import { policyText } from '../helpers/policy-files.js';
import { startSentinel } from '../helpers/sentinel.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

describe('the HTTP listener', () => {
  let root: string;
  let dir: string;
  let cleanup: () => void;
  const stops: (() => unknown)[] = [];

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir());
    dir = path.join(root, 'policies');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
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
