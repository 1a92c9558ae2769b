import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CheckRunner, type Check, type CheckOutcome, type NeighbourReport } from '../../src/health/checks.js';
import { HeartbeatPublisher, type HeartbeatOptions, type LiveCheck } from '../../src/health/heartbeat.js';
import type { SentinelHeartbeat } from '../../src/health/heartbeat-payload.js';
import type { Envelope } from '../../src/protocol/envelope.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { until } from '../helpers/until.js';

/** A check of the neighbour that answers when the test says so (with the neighbour's HealthCheck, if given). */
function pendingCheck(name: string, required = true): Check & { answer(ok: boolean, report?: NeighbourReport): void } {
  let answer: (outcome: CheckOutcome) => void = () => undefined;
  return {
    name,
    required,
    timeoutMs: 60_000,
    run: () => new Promise<CheckOutcome>((resolve) => (answer = resolve)),
    answer: (ok, report) => answer({ ok, ...(report ? { report } : {}) }),
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

  it("speaking for a neighbour, carries the neighbour's version and uptime (of the first check that said them), its own in details.sidecar", async () => {
    const [plain, first, second] = [pendingCheck('port'), pendingCheck('gateway'), pendingCheck('gateway-2')];
    const sidecar = publisher({ checks: [plain, first, second], speaksFor: 'neighbour' });
    sidecar.heartbeat.start();
    sidecar.clock.advance(12_300);
    // Answered in another order than given: the first given that said them still wins.
    second.answer(true, { status: 'healthy', checks: {}, version: '9.9.9', uptime: 1 });
    plain.answer(true);
    first.answer(true, { status: 'healthy', checks: {}, version: '1.4.2', uptime: 3600 });
    await until(() => sidecar.sent.at(-1)?.payload.state === 'running', 2000, 'running');
    const beat = sidecar.heartbeat.payload();
    expect(beat).toMatchObject({ version: '1.4.2', uptime: 3600, checks: { port: 'ok', gateway: 'ok', 'gateway-2': 'ok' } });
    expect(beat.details.sidecar).toEqual({ required: false, message: 'nachos-sentinel sidecar test, up 12.3 s', version: 'test', uptime: 12.3 });
    // Not a check: it never counts as one.
    expect(beat.checks).not.toHaveProperty('sidecar');
  });

  it("speaking for a neighbour that said neither, carries its own version and uptime, and says them in details.sidecar too", async () => {
    const check = pendingCheck('gateway');
    const sidecar = publisher({ checks: [check], speaksFor: 'neighbour' });
    sidecar.heartbeat.start();
    sidecar.clock.advance(2000);
    check.answer(true, { status: 'healthy', checks: { llm: 'ok' } });
    await until(() => sidecar.sent.at(-1)?.payload.state === 'running', 2000, 'running');
    expect(sidecar.heartbeat.payload()).toMatchObject({ version: 'test', uptime: 2, details: { sidecar: { version: 'test', uptime: 2, message: 'nachos-sentinel sidecar test, up 2 s' } } });
    // One that fails says nothing of the neighbour: its own again.
    const failing = pendingCheck('gateway');
    const down = publisher({ checks: [failing], speaksFor: 'neighbour' });
    down.heartbeat.start();
    failing.answer(false);
    await until(() => down.sent.at(-1)?.payload.status === 'unhealthy', 2000, 'unhealthy');
    expect(down.heartbeat.payload()).toMatchObject({ version: 'test', uptime: 0 });
  });

  it("keeps a neighbour's failing check named sidecar apart from its own facts; speaking for itself, has no details.sidecar", async () => {
    const check = pendingCheck('gateway');
    const sidecar = publisher({ checks: [check], speaksFor: 'neighbour' });
    sidecar.heartbeat.start();
    check.answer(true, { status: 'unhealthy', checks: { sidecar: 'error' }, version: '1.4.2', uptime: 5 });
    await until(() => sidecar.sent.at(-1)?.payload.state === 'running', 2000, 'running');
    const beat = sidecar.heartbeat.payload();
    expect(beat.checks).toMatchObject({ gateway: 'ok', 'gateway.sidecar': 'error' });
    expect(beat.details['gateway.sidecar']).toEqual({ required: true, message: 'reported by gateway' });
    expect(beat.details.sidecar).toMatchObject({ version: 'test' });

    const own = pendingCheck('cache');
    const central = publisher({ checks: [own] });
    central.heartbeat.start();
    own.answer(true, { status: 'healthy', checks: {}, version: '1.4.2', uptime: 5 });
    await until(() => central.sent.at(-1)?.payload.state === 'running', 2000, 'running');
    expect(central.heartbeat.payload()).toMatchObject({ version: 'test', uptime: 0 });
    expect(central.heartbeat.payload().details).not.toHaveProperty('sidecar');
  });
});
