import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CheckRunner, type Check, type CheckOutcome } from '../../src/health/checks.js';
import { HeartbeatPublisher, type HeartbeatOptions, type LiveCheck } from '../../src/health/heartbeat.js';
import type { SentinelHeartbeat } from '../../src/health/heartbeat-payload.js';
import type { Envelope } from '../../src/protocol/envelope.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/until.js';

/** A check of the neighbour that answers when the test says so. */
function pendingCheck(name: string, required = true): Check & { answer(ok: boolean): void } {
  let answer: (outcome: CheckOutcome) => void = () => undefined;
  return {
    name,
    required,
    timeoutMs: 60_000,
    run: () => new Promise<CheckOutcome>((resolve) => (answer = resolve)),
    answer: (ok) => answer({ ok }),
  };
}

/** A publisher on a fake clock and a bus that keeps what it is given. */
function publisher(options: { checks?: Check[]; live?: LiveCheck[]; speaksFor?: HeartbeatOptions['speaksFor'] } = {}) {
  const clock = new FakeClock();
  const sent: Envelope<SentinelHeartbeat>[] = [];
  const bus = {
    connected: true,
    maxPayload: 1024 * 1024,
    publish: (_subject: string, data: Uint8Array) => void sent.push(JSON.parse(Buffer.from(data).toString('utf8')) as Envelope<SentinelHeartbeat>),
    flush: async () => undefined,
  };
  const runner = new CheckRunner(options.checks ?? [], () => heartbeat.publishIfChanged());
  const heartbeat: HeartbeatPublisher = new HeartbeatPublisher({
    bus,
    clock,
    component: 'gateway',
    instance: 'gateway-1',
    version: 'test',
    intervalMs: 1000,
    runner,
    live: options.live ?? [],
    policyRevision: () => null,
    log: pino({ level: 'silent' }),
    random: () => 0.5,
    ...(options.speaksFor ? { speaksFor: options.speaksFor } : {}),
  });
  return { clock, sent, heartbeat, runner, statuses: () => sent.map((e) => e.payload.status) };
}

describe('HeartbeatPublisher', () => {
  it('knows its own heartbeats by their envelope ids: the last 16 it published, and no other', () => {
    const { heartbeat, sent } = publisher();
    heartbeat.start();
    for (let i = 0; i < 20; i++) heartbeat.onReconnect();
    const ids = sent.map((e) => e.id);
    expect(ids).toHaveLength(21);
    expect(ids.slice(-16).every((id) => heartbeat.isOwnHeartbeat(id))).toBe(true);
    expect(ids.slice(0, 5).some((id) => heartbeat.isOwnHeartbeat(id))).toBe(false);
    expect(heartbeat.isOwnHeartbeat('forged')).toBe(false);
    expect(heartbeat.isOwnHeartbeat('')).toBe(false);
  });

  it("speaking for a neighbour, says unknown until every check has answered and with no check at all: never healthy from no evidence", async () => {
    const slow = pendingCheck('gateway');
    const sidecar = publisher({ checks: [slow], speaksFor: 'neighbour' });
    sidecar.heartbeat.start();
    expect(sidecar.sent[0]?.payload).toMatchObject({ status: 'unknown', state: 'starting' });
    sidecar.clock.advance(1000);
    expect(sidecar.statuses()).toEqual(['unknown', 'unknown']);
    slow.answer(true);
    await until(() => sidecar.sent.at(-1)?.payload.state === 'running', 2000, 'the answer');
    expect(sidecar.sent.at(-1)?.payload).toMatchObject({ status: 'healthy', state: 'running', checks: { gateway: 'ok' } });

    // A required check that fails is evidence enough, while another has not answered yet.
    const [failing, pending] = [pendingCheck('health'), pendingCheck('port')];
    const partly = publisher({ checks: [failing, pending], speaksFor: 'neighbour' });
    partly.heartbeat.start();
    failing.answer(false);
    await until(() => partly.sent.at(-1)?.payload.status === 'unhealthy', 2000, 'unhealthy');
    expect(partly.sent.at(-1)?.payload.state).toBe('starting');
    pending.answer(true);

    // No check of the neighbour at all: unknown on every heartbeat, whatever its own checks say (a failing
    // optional one stays unknown, which the probe fails, rather than degraded, which it passes).
    let delivered = true;
    const none = publisher({ speaksFor: 'neighbour', live: [{ name: 'policy_delivery', required: false, test: () => ({ ok: delivered }) }] });
    none.heartbeat.start();
    await until(() => none.sent.at(-1)?.payload.state === 'running', 2000, 'running');
    none.clock.advance(3000);
    delivered = false;
    none.clock.advance(1000);
    expect(new Set(none.statuses())).toEqual(new Set(['unknown']));
    expect(none.sent.at(-1)?.payload.checks).toEqual({ policy_delivery: 'error' });
  });

  it('speaking for itself (the central sentinel), reports from its own checks from the first heartbeat, as before', () => {
    const slow = pendingCheck('event_loop', false);
    const central = publisher({ checks: [slow], live: [{ name: 'bus', required: true, test: () => ({ ok: true }) }] });
    central.heartbeat.start();
    expect(central.sent[0]?.payload).toMatchObject({ status: 'healthy', state: 'starting', checks: { bus: 'ok' } });
    slow.answer(true);
  });
});
