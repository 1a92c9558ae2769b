import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { Transition } from '../../src/health/aggregator.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { test } from '../helpers/fixtures.js';
import { NatsCluster, type NatsServer } from '../helpers/nats-server.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { quietFor, until } from '../helpers/until.js';

const H = 200;

/** A 3-node cluster of this test's own, stopped after it (after everything connected to it). */
const it = test.extend('cluster', async ({ defer }) => {
  const cluster = await NatsCluster.start(3);
  defer(() => cluster.stop());
  return cluster;
});

describe('a 3-node NATS cluster', () => {
  const nodeOf = (cluster: NatsCluster, url: string) => cluster.servers.find((s) => url.endsWith(`:${s.port}`)) as NatsServer;

  it('survives the loss of its node: fails over, is heard again within 1 s, and keeps serving', async ({ cluster, dir, sentinel, listen, beater }) => {
    const running = await sentinel({ servers: cluster.urls.join(','), policies: dir, interval: `${H}ms`, require: 'gateway' });
    await running.connected();
    const mine = nodeOf(cluster, running.sentinel.bus.nc?.getServer() ?? '');
    const others = cluster.servers.filter((s) => s !== mine);
    const [observerNode, beaterNode] = others as [NatsServer, NatsServer];
    const listener = await listen([SUBJECTS.policyReload, SUBJECTS.health, SUBJECTS.healthChanged], observerNode.url);
    await beater('gateway', 'gw-1', H, beaterNode.url);
    await until(() => running.sentinel.monitor.aggregator.overall === 'healthy', 5000, 'healthy');
    const before = listener.messages.length;

    const killedAt = performance.now();
    const killedWall = Date.now();
    await mine.kill();
    // A heartbeat sent after the kill (one already on its way before it would prove nothing).
    const heardAgain = await until(
      () =>
        listener.messages
          .slice(before)
          .find((m) => m.subject === SUBJECTS.health && m.envelope.source === 'sentinel' && Date.parse(m.envelope.timestamp) >= killedWall),
      5000,
      'a heartbeat from the new node',
    );
    const announced = await until(
      () => listener.messages.slice(before).find((m) => m.subject === SUBJECTS.policyReload && m.envelope.payload.reason === 'reconnect'),
      5000,
      'the reconnect announcement',
    );
    expect(heardAgain.at - killedAt).toBeLessThan(1000);
    expect(announced.at - killedAt).toBeLessThan(1000);
    expect(nodeOf(cluster, running.sentinel.bus.nc?.getServer() ?? '')).not.toBe(mine);

    // It keeps publishing reloads, and its status stays answerable.
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    await until(
      () => listener.on(SUBJECTS.policyReload).some((e) => e.payload.reason === 'change' && e.payload.revision === shellRevision(dir)),
      5000,
      'the change',
    );
    const reply = await listener.nc.request(SUBJECTS.healthStatus, '', { timeout: 2000 });
    expect(reply.json<{ payload: { components: { name: string; status: string }[] } }>().payload.components).toContainEqual(
      expect.objectContaining({ name: 'gateway', status: 'healthy' }),
    );
    await quietFor(3 * H);
    const falseAlarms = listener.on(SUBJECTS.healthChanged).map((e) => e.payload as unknown as Transition).filter((t) => t.to === 'suspect' || t.to === 'stale');
    expect(falseAlarms).toEqual([]);
  });

  it('two replicas on different nodes: one answer per request, and duplicate reloads share a revision', async ({ cluster, dir, sentinel, listen }) => {
    const [n1, n2, n3] = cluster.servers as [NatsServer, NatsServer, NatsServer];
    const a = await sentinel({ servers: n1.url, policies: dir, interval: `${H}ms` });
    const b = await sentinel({ servers: n2.url, policies: dir, interval: `${H}ms` });
    await a.connected();
    await b.connected();
    const listener = await listen([SUBJECTS.policyReload], n3.url);
    // Both replicas see both replicas (their heartbeats cross the cluster).
    await until(() => a.sentinel.monitor.aggregator.trackedCount === 2 && b.sentinel.monitor.aggregator.trackedCount === 2, 5000, 'both replicas');

    for (let i = 0; i < 10; i++) {
      const answers = await listener.nc.requestMany(SUBJECTS.healthStatus, '', { maxWait: 200 });
      let n = 0;
      for await (const _ of answers) n++;
      expect(n).toBe(1);
    }

    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    const reloads = await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    const revisions = reloads.map((e) => e.payload.revision);
    expect(revisions).toEqual([shellRevision(dir), shellRevision(dir)]);
    expect(new Set(reloads.map((e) => e.id)).size).toBe(2);
  });
});
