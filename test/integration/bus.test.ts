import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { Daemon } from '../helpers/daemon.js';
import { NatsCluster, type NatsServer, freePort } from '../helpers/nats-server.js';
import { it } from '../helpers/fixtures.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { until } from '../helpers/until.js';

describe('the bus comes and goes', () => {
  it('announces again after its bus server is killed and restarted: the bus kept nothing', async ({ dir, defer, sentinel, listen }) => {
    // The listener sits on another node of a cluster, so it hears the announcement whoever reconnects first.
    const cluster = await NatsCluster.start(2);
    defer(() => cluster.stop());
    const [near, far] = cluster.servers as [NatsServer, NatsServer];
    const running = await sentinel({ servers: near.url, policies: dir });
    await running.connected();
    await until(() => running.sentinel.announcer.announced, 5000, 'the startup announcement');
    const first = running.sentinel.announcer.announced;
    const listener = await listen([SUBJECTS.policyReload], far.url);

    await near.restart();
    const [again] = await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    expect(again?.payload).toMatchObject({ reason: 'reconnect', revision: first?.snapshot.revision, sequence: first?.sequence });
    expect(running.lines.some((l) => l.msg === 'disconnected from the bus; reconnecting')).toBe(true);
    expect(running.lines.some((l) => l.msg === 'reconnected to the bus')).toBe(true);
  });

  it('carries a change made while the bus was away in the reconnect announcement', async ({ startServer, dir, sentinel, listen }) => {
    const server = await startServer();
    const running = await sentinel({ servers: server.url, policies: dir });
    await running.connected();
    await until(() => running.sentinel.announcer.announced, 5000, 'the startup announcement');
    const before = running.sentinel.announcer.announced?.snapshot.revision;

    await server.kill();
    await until(() => !running.sentinel.bus.connected, 5000, 'the disconnect');
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    await until(() => running.sentinel.reloader.inForce?.revision === shellRevision(dir), 5000, 'the change to be applied');

    await server.spawn();
    await listen([SUBJECTS.policyReload], server.url);
    // The sentinel may reconnect before or after the listener; either way it announces after reconnecting.
    await until(() => running.sentinel.bus.reconnects > 0, 10_000, 'the reconnect');
    await until(() => running.sentinel.announcer.announced?.snapshot.revision === shellRevision(dir), 5000, 'the announcement');
    expect(running.sentinel.announcer.announced).toMatchObject({ sequence: 2, previous: { revision: before } });
  });

  it('started before the bus, it keeps retrying with a clear log line and announces once the bus is up', async ({ startServer, dir, defer, listen }) => {
    const port = await freePort();
    const daemon = Daemon.start(['--servers', `nats://127.0.0.1:${port}`, '--policies', dir]);
    defer(() => daemon.kill());
    const waiting = await daemon.waitForLog((l) => l.msg === 'bus not reachable yet; retrying (the bus must start first)');
    expect(waiting).toMatchObject({ level: 'warn', servers: [`nats://127.0.0.1:${port}`] });
    expect(daemon.exit).toBeUndefined();

    const server = await startServer({ port });
    const listener = await listen([SUBJECTS.policyReload], server.url);
    await daemon.waitForLog((l) => l.msg === 'connected to the bus');
    // The listener and the daemon race to the new server; ask for the snapshot rather than rely on order.
    const reply = await until(
      () => listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 1000 }).catch(() => undefined),
      10_000,
      'an answer on policy.current',
    );
    expect(reply.json<{ payload: { revision: string } }>().payload.revision).toBe(shellRevision(dir));
    // Its log is written asynchronously: the line may follow the reply.
    await daemon.waitForLog((l) => l.msg === 'announced' && l.reason === 'startup', 5000, 'the startup announcement in the log');
  });
});
