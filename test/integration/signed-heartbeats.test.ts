import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUser } from '@nats-io/nkeys';
import { describe, expect } from 'vitest';
import type { HealthStatusPayload } from '../../src/health/status-payload.js';
import { HEARTBEAT_PREFIX, signHeartbeat } from '../../src/health/heartbeat-trust.js';
import { makeEnvelope } from '../../src/protocol/envelope.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { SigningKey } from '../../src/trust/ed25519.js';
import { signedBytes } from '../../src/trust/signed-message.js';
import { test } from '../helpers/fixtures.js';
import { signingKey } from '../helpers/signing.js';
import { quietFor, until } from '../helpers/until.js';

/**
 * Signed heartbeats (issue 16): a component protected by `[health.trust]` is
 * believed only from heartbeats its own key signed, fresh, each once; forged,
 * wrongly signed and replayed ones are ignored and counted, on a real nats-server.
 */

const H = 200;

describe('issue 16: heartbeats that cannot be forged where it matters', () => {
  test('believes a protected component only from beats its key signed, fresh and once; forged, foreign and replayed beats are ignored and counted', async ({
    root,
    sentinel,
    sidecarOf,
    beater,
    listen,
    defer,
  }) => {
    let healthy = true;
    const gateway: Server = createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: healthy ? 'healthy' : 'unhealthy', component: 'gateway', checks: { llm: healthy ? 'ok' : 'error' } }));
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => gateway.close(() => resolve())));
    const key = signingKey(root, 'gateway.nk');
    const watch = await listen([SUBJECTS.health]);
    const central = await sentinel({ interval: `${H}ms`, require: 'gateway', 'heartbeat-key': `gateway=${key.publicKey}` });
    await central.connected();
    const status = async () => (await watch.nc.request(SUBJECTS.healthStatus, JSON.stringify({ component: 'gateway' }), { timeout: 2000 })).json<{ payload: HealthStatusPayload }>().payload;

    // Forged, unsigned: a flood of claims never makes the gateway exist.
    const forged = await beater('gateway', 'forged-1', H);
    await until(() => central.sentinel.monitor.counters.rejected.signature >= 3, 5000, 'forged beats counted');
    expect((await status()).components[0]).toMatchObject({ status: 'missing' });
    await forged.crash();

    // The real one, signed by its key.
    await sidecarOf('gateway', { check: [`http://127.0.0.1:${(gateway.address() as AddressInfo).port}/health`], 'health-seed': key.seedFile, interval: `${H}ms` });
    const view = await until(async () => {
      const v = await status();
      return v.components[0]?.status === 'healthy' ? v : undefined;
    }, 5000, 'the signed gateway healthy');
    expect(view.components[0]?.instances.map((i) => i.instance)).toHaveLength(1);
    const captured = await until(() => watch.on(SUBJECTS.health).find((e) => e.source === 'gateway' && e.payload.status === 'healthy' && e.payload.signature), 5000, 'a signed healthy beat');

    // Signed by another key: ignored.
    const other = new SigningKey(new TextDecoder().decode(createUser().getSeed()));
    const before = central.sentinel.monitor.counters.rejected.signature;
    const foreign = signHeartbeat(makeEnvelope(SUBJECTS.health, 'gateway', { status: 'unhealthy', component: 'gateway', instance: 'intruder-1', intervalMs: H }), other);
    watch.nc.publish(SUBJECTS.health, JSON.stringify(foreign));
    // The right key named, a signature that is not its: ignored.
    const bad = structuredClone(foreign) as typeof foreign & { payload: { signature: { key: string } } };
    bad.payload.signature.key = key.publicKey;
    watch.nc.publish(SUBJECTS.health, JSON.stringify(bad));
    await until(() => central.sentinel.monitor.counters.rejected.signature >= before + 2, 5000, 'both counted');

    // The gateway fails; a captured healthy beat replayed cannot hide it.
    healthy = false;
    await until(async () => (await status()).components[0]?.status === 'unhealthy', 5000, 'the gateway unhealthy');
    const counted = central.sentinel.monitor.counters.rejected.signature;
    for (let i = 0; i < 5; i++) watch.nc.publish(SUBJECTS.health, JSON.stringify(captured));
    await until(() => central.sentinel.monitor.counters.rejected.signature >= counted + 5, 5000, 'the replays counted');
    await quietFor(2 * H);
    expect((await status()).components[0]?.status).toBe('unhealthy');
    // What a signed beat's signature covers: the envelope, with this purpose's prefix (never a policy set's).
    expect(new TextDecoder().decode(signedBytes(HEARTBEAT_PREFIX, captured as never)).startsWith('nachos-sentinel heartbeat v1\n{')).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${central.sentinel.httpAddress?.port}/metrics`)).text();
    expect(metrics).toMatch(/^nachos_sentinel_heartbeats_rejected_total\{reason="signature"\} [1-9]\d*$/m);
  });
});
