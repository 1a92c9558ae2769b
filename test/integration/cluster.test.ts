import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Transition } from '../../src/health/aggregator.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { Beater } from '../helpers/beater.js';
import { BusListener } from '../helpers/bus-listener.js';
import { NatsCluster, type NatsServer } from '../helpers/nats-server.js';
import { policyDir, policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { startSentinel } from '../helpers/sentinel.js';
import { quietFor, until } from '../helpers/until.js';

const H = 200;

describe('a 3-node NATS cluster', () => {
  let cluster: NatsCluster;
  let root: string;
  let dir: string;
  let cleanup: () => void;
  const stops: (() => Promise<unknown> | unknown)[] = [];

  beforeEach(async () => {
    cluster = await NatsCluster.start(3);
    ({ root, dir, cleanup } = policyDir());
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await cluster.stop();
    cleanup();
  });

  const nodeOf = (url: string) => cluster.servers.find((s) => url.endsWith(`:${s.port}`)) as NatsServer;

  it('survives the loss of its node: fails over, is heard again within 1 s, and keeps serving', async () => {
    const running = await startSentinel({ servers: cluster.urls.join(','), policies: dir, interval: `${H}ms`, require: 'gateway' }, root);
    stops.push(() => running.close());
    await running.connected();
    const mine = nodeOf(running.sentinel.bus.nc?.getServer() ?? '');
    const others = cluster.servers.filter((s) => s !== mine);
    const [observerNode, beaterNode] = others as [NatsServer, NatsServer];
    const listener = await BusListener.start(observerNode.url, [SUBJECTS.policyReload, SUBJECTS.health, SUBJECTS.healthChanged]);
    stops.push(() => listener.close());
    const gateway = await Beater.start(beaterNode.url, 'gateway', 'gw-1', H);
    stops.push(() => gateway.crash().catch(() => undefined));
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
    expect(nodeOf(running.sentinel.bus.nc?.getServer() ?? '')).not.toBe(mine);

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

  it('two replicas on different nodes: one answer per request, and duplicate reloads share a revision', async () => {
    const [n1, n2, n3] = cluster.servers as [NatsServer, NatsServer, NatsServer];
    const a = await startSentinel({ servers: n1.url, policies: dir, interval: `${H}ms` }, root);
    stops.push(() => a.close());
    const b = await startSentinel({ servers: n2.url, policies: dir, interval: `${H}ms` }, root);
    stops.push(() => b.close());
    await a.connected();
    await b.connected();
    const listener = await BusListener.start(n3.url, [SUBJECTS.policyReload]);
    stops.push(() => listener.close());
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
