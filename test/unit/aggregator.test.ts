import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HealthAggregator, type Transition } from '../../src/health/aggregator.js';
import type { Heartbeat } from '../../src/health/heartbeat-payload.js';
import { FakeClock } from '../helpers/fake-clock.js';

const H = 1000;

function setup(options: { required?: string[]; optional?: string[]; maxInstances?: number; maxPerComponent?: number } = {}) {
  const clock = new FakeClock();
  const transitions: Transition[] = [];
  const agg = new HealthAggregator({
    clock,
    intervalMs: H,
    required: options.required ?? [],
    optional: options.optional ?? [],
    maxInstances: options.maxInstances ?? 10_000,
    maxPerComponent: options.maxPerComponent,
    onTransition: (t) => transitions.push(t),
  });
  agg.setConnected(true);
  /** Advances time in 100 ms ticks, as the daemon's sweep does. */
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      clock.advance(100);
      agg.tick();
    }
  };
  const hb = (component: string, instance: string, extra: Partial<Heartbeat> = {}) =>
    agg.ingest({ status: 'healthy', component, instance, intervalMs: H, state: 'running', ...extra });
  const of = (scope: Transition['scope'], who?: string) =>
    transitions.filter((t) => t.scope === scope && (who === undefined || t.component === who || t.instance === who));
  return { clock, agg, transitions, run, hb, of };
}

describe('HealthAggregator', () => {
  it('is unknown for its first interval, then judges the roster', () => {
    const { agg, run, of } = setup({ required: ['gateway'], optional: ['slack'] });
    expect(agg.overall).toBe('unknown');
    run(900);
    expect(agg.overall).toBe('unknown');
    expect(of('component')).toEqual([]);
    run(200);
    expect(agg.overall).toBe('unhealthy');
    expect(agg.view().missing).toEqual(['gateway']);
    expect(of('component').map((t) => [t.component, t.from, t.to])).toEqual([
      ['slack', null, 'missing'],
      ['gateway', null, 'missing'],
    ]);
    expect(of('overall').map((t) => [t.from, t.to, t.reason])).toEqual([['unknown', 'unhealthy', 'aggregate']]);
    expect(agg.view().reason).toBe('required gateway is missing (has not reported); optional slack is missing (has not reported)');
  });

  it('is healthy with every required component healthy, degraded by an optional one', () => {
    const { agg, run, hb } = setup({ required: ['gateway', 'llm'], optional: ['slack'] });
    hb('gateway', 'g1');
    hb('llm', 'l1');
    run(1100);
    expect(agg.overall).toBe('degraded');
    hb('slack', 's1');
    expect(agg.overall).toBe('healthy');
    hb('slack', 's1', { status: 'degraded' });
    expect(agg.overall).toBe('degraded');
    hb('slack', 's1');
    hb('llm', 'l1', { status: 'degraded' });
    expect(agg.overall).toBe('degraded');
    hb('llm', 'l1', { status: 'unhealthy' });
    expect(agg.overall).toBe('unhealthy');
  });

  it('counts a component outside the roster only when it is unhealthy, and then as degraded', () => {
    const { agg, run, hb } = setup({ required: ['gateway'] });
    hb('gateway', 'g1');
    run(1100);
    hb('tool-browser', 't1', { status: 'degraded' });
    expect(agg.overall).toBe('healthy');
    hb('tool-browser', 't1', { status: 'unhealthy' });
    expect(agg.overall).toBe('degraded');
    expect(agg.view().components.map((c) => [c.name, c.role, c.status])).toEqual([
      ['gateway', 'required', 'healthy'],
      ['tool-browser', 'observed', 'unhealthy'],
    ]);
  });

  it('suspects after 1.5 intervals and calls stale within 2.5 intervals + 0.5 s, each once', () => {
    const { agg, clock, run, hb, of } = setup({ required: ['gateway'] });
    run(1100);
    hb('gateway', 'g1');
    const heardAt = clock.now();
    run(5000);
    const moves = of('instance', 'g1').slice(1);
    expect(moves.map((t) => [t.from, t.to, t.reason])).toEqual([
      ['healthy', 'suspect', 'silent'],
      ['suspect', 'stale', 'stale'],
    ]);
    // Detected within one 100 ms sweep of each deadline.
    const at = (i: number) => Date.parse(moves[i]?.detectedAt ?? '') - clock.wallNow() + clock.now() - heardAt;
    expect(at(0)).toBeGreaterThan(1.5 * H);
    expect(at(0)).toBeLessThanOrEqual(1.5 * H + 100);
    expect(at(1)).toBeGreaterThan(2.5 * H + 300);
    expect(at(1)).toBeLessThanOrEqual(2.5 * H + 400);
    expect(of('component', 'gateway').map((t) => t.to)).toEqual(['missing', 'healthy', 'degraded', 'missing']);
    expect(agg.overall).toBe('unhealthy');

    hb('gateway', 'g1');
    expect(of('instance', 'g1').at(-1)).toMatchObject({ from: 'stale', to: 'healthy', reason: 'heard' });
    expect(agg.overall).toBe('healthy');
  });

  it('judges each sender against its own interval', () => {
    const { run, hb, of } = setup();
    run(1100);
    hb('fast', 'f', { intervalMs: 200 });
    hb('slow', 's', { intervalMs: 10_000 });
    run(1500);
    expect(of('instance', 'f').map((t) => t.to)).toEqual(['healthy', 'suspect', 'stale']);
    expect(of('instance', 's').map((t) => t.to)).toEqual(['healthy']);
  });

  it('takes the first instance of a rostered component as a join, not a restart', () => {
    const { run, hb, of } = setup({ required: ['gateway'] });
    run(1100);
    hb('gateway', 'g1');
    expect(of('instance', 'g1')[0]).toMatchObject({ from: null, to: 'healthy', reason: 'join' });
  });

  it('takes a new instance of a known component as a restart, not a new service, and retires the old one quietly', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'] });
    hb('gateway', 'g1');
    run(1100);
    hb('gateway', 'g1');
    run(500); // g1 dies; its replacement starts
    hb('gateway', 'g2');
    for (let i = 0; i < 10; i++) {
      run(1000);
      hb('gateway', 'g2');
    }
    expect(of('instance', 'g2')[0]).toMatchObject({ from: null, to: 'healthy', reason: 'restart' });
    expect(of('instance', 'g1').map((t) => [t.from, t.to, t.reason])).toEqual([
      [null, 'healthy', 'join'],
      ['healthy', 'gone', 'restart'],
    ]);
    expect(of('component', 'gateway').map((t) => t.to)).toEqual(['healthy']);
    expect(agg.overall).toBe('healthy');
  });

  it('keeps replicas apart: a silent replica is suspect even while another is alive', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'] });
    hb('gateway', 'a');
    hb('gateway', 'b');
    run(1100);
    for (let i = 0; i < 4; i++) {
      hb('gateway', 'a');
      run(1000);
    }
    expect(of('instance', 'b').map((t) => t.to)).toEqual(['healthy', 'suspect', 'stale']);
    expect(agg.view('gateway').components[0]?.status).toBe('healthy');
  });

  it('removes a leaving instance at once, as a leave and not a failure', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'] });
    hb('gateway', 'g1');
    hb('tool', 't1');
    run(1100);
    hb('tool', 't1', { state: 'stopping' });
    expect(of('instance', 't1').at(-1)).toMatchObject({ from: 'healthy', to: 'gone', reason: 'leave' });
    expect(of('component', 'tool').at(-1)).toMatchObject({ to: 'gone' });
    expect(agg.view().components.map((c) => c.name)).toEqual(['gateway']);
    run(10_000);
    expect(of('instance', 't1').filter((t) => t.to === 'stale')).toEqual([]);
    expect(agg.ingest({ status: 'healthy', component: 'x', state: 'stopping' })).toBe('ignored');
  });

  it('raises no false stale for its own outage: unknown while cut off, one interval of grace after', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'] });
    hb('gateway', 'g1');
    run(1100);
    expect(agg.overall).toBe('healthy');
    agg.setConnected(false);
    expect(agg.overall).toBe('unknown');
    run(20_000);
    agg.setConnected(true);
    run(900);
    expect(agg.overall).toBe('unknown');
    hb('gateway', 'g1');
    run(300);
    expect(agg.overall).toBe('healthy');
    expect(of('instance', 'g1').map((t) => t.to)).toEqual(['healthy']);
    expect(of('overall').map((t) => [t.to, t.reason])).toEqual([
      ['healthy', 'aggregate'],
      ['unknown', 'disconnected'],
      ['healthy', 'aggregate'],
    ]);
  });

  it('still finds a sender silent after its grace interval', () => {
    const { run, hb, of } = setup();
    hb('gateway', 'g1');
    run(1100);
    hb('gateway', 'g1');
    run(500);
    // A short outage of our own, after which g1 never speaks again.
    run(0);
    run(4000);
    expect(of('instance', 'g1').map((t) => t.to)).toEqual(['healthy', 'suspect', 'stale']);
  });

  it('caps the instances it tracks, making room by evicting the oldest stale one, else one heard only once, else the least recently heard outside the roster', () => {
    const { agg, run, hb, of } = setup({ maxInstances: 3 });
    hb('a', '1');
    hb('b', '1');
    hb('c', '1');
    run(1100);
    for (let i = 0; i < 4; i++) {
      hb('b', '1');
      hb('c', '1');
      run(1000);
    }
    expect(of('instance', 'a').at(-1)?.to).toBe('stale');
    expect(hb('d', '1')).toBe('tracked');
    expect(of('instance', 'a').at(-1)).toMatchObject({ to: 'gone', reason: 'evicted' });
    expect(agg.trackedCount).toBe(3);
    // No stale one left: a newcomer displaces one heard only once (d)...
    hb('c', '1');
    expect(hb('e', '1')).toBe('tracked');
    expect(of('instance', 'd').at(-1)).toMatchObject({ to: 'gone', reason: 'evicted' });
    // ...and with every one heard twice, the least recently heard outside the roster (b).
    hb('e', '1');
    expect(hb('f', '1')).toBe('tracked');
    expect(of('component', 'b').at(-1)).toMatchObject({ to: 'gone' });
    expect(agg.trackedCount).toBe(3);
  });

  it('never lets a flood lock a rostered component out, nor displace its live instances that keep beating', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'], maxInstances: 100 });
    hb('gateway', 'real');
    run(1000);
    hb('gateway', 'real');
    // 10,000 forged instances of made-up components, then of the rostered one itself.
    for (let i = 0; i < 10_000; i++) hb(`forged-${i}`, 'x');
    expect(agg.trackedCount).toBe(100);
    expect(of('instance', 'real').map((t) => t.to)).toEqual(['healthy']);
    // The real gateway restarts: its new instance gets in, displacing a forged one, and keeps beating.
    expect(hb('gateway', 'real-2')).toBe('tracked');
    hb('gateway', 'real-2');
    let refused = 0;
    for (let i = 0; i < 500; i++) if (hb('gateway', `forged-gw-${i}`) === 'refused') refused++;
    // Forged instances of the rostered name take the flood's places, then each other's (each heard once),
    // never the place of one that keeps beating. (The per-component cap, 1,000 by default, keeps one
    // name from filling a table of 10,000.)
    expect(of('instance', 'real').filter((t) => t.to === 'gone')).toEqual([]);
    expect(of('instance', 'real-2').filter((t) => t.to === 'gone')).toEqual([]);
    expect(refused).toBe(0);
    const gateway = agg.view('gateway').components[0];
    expect(gateway?.instances.length).toBe(100);
    // Once every place is held by an instance heard twice, a newcomer is refused.
    for (const i of gateway?.instances ?? []) hb('gateway', i.instance);
    expect(hb('gateway', 'one-too-many')).toBe('refused');
  });

  it('keeps room for an instance that keeps beating: one-shot claims, 10,000 and then 5,000 a second, never lock the real gateway out', () => {
    const { agg, run, hb, of } = setup({ required: ['gateway'] });
    // 10,000 forged gateway instances, each heard once and declaring a long interval (they stay live),
    // against the cap of 1,000 per component.
    let forged = 0;
    const forge = (component: string, n: number) => {
      for (let i = 0; i < n; i++, forged++) hb(component, `forged-${forged}`, { intervalMs: 60_000 });
    };
    forge('gateway', 10_000);
    // Then the real gateway beats every interval while the flood goes on (500 per 100 ms sweep).
    const outcomes: string[] = [];
    for (let tick = 0; tick < 100; tick++) {
      if (tick % 10 === 0) outcomes.push(hb('gateway', 'real'));
      forge('gateway', 500);
      run(100);
    }
    // Admitted at every beat; displaced at most once (while heard only once), tracked ever since.
    expect(outcomes).toEqual(Array(10).fill('tracked'));
    const real = of('instance', 'real');
    expect(real.filter((t) => t.to === 'gone').length).toBeLessThanOrEqual(1);
    expect(real.at(-1)).toMatchObject({ to: 'healthy' });
    const gateway = agg.view('gateway').components[0];
    expect(gateway?.instances.map((i) => i.instance)).toContain('real');
    expect(gateway).toMatchObject({ status: 'healthy' });
    expect(gateway?.instances).toHaveLength(1000);

    // The same under the table's cap: a tool outside the roster, beating, among one-shot made-up names.
    const full = setup({ maxInstances: 1000 });
    for (let i = 0; i < 10_000; i++) full.hb(`forged-${i}`, 'x', { intervalMs: 60_000 });
    for (let tick = 0; tick < 100; tick++) {
      if (tick % 10 === 0) full.hb('tool-browser', 'real');
      for (let i = 0; i < 500; i++) full.hb(`forged-${tick}-${i}`, 'x', { intervalMs: 60_000 });
      full.run(100);
    }
    expect(full.of('instance', 'real').filter((t) => t.to === 'gone').length).toBeLessThanOrEqual(1);
    expect(full.agg.view('tool-browser').components[0]?.instances.map((i) => i.instance)).toEqual(['real']);
    expect(full.agg.trackedCount).toBe(1000);
  });

  it('takes an instance that reports unknown as alive but vouching for nothing: its component unknown, a required one making the system unknown, an optional one degraded', () => {
    const { agg, run, hb } = setup({ required: ['gateway'], optional: ['slack'] });
    hb('gateway', 'sidecar-1', { status: 'unknown' });
    hb('slack', 'sidecar-2', { status: 'unknown' });
    run(1100);
    expect(agg.view().components.map((c) => [c.name, c.status, c.reason])).toEqual([
      ['gateway', 'unknown', '1 of 1 unknown (its sidecar has no check)'],
      ['slack', 'unknown', '1 of 1 unknown (its sidecar has no check)'],
    ]);
    expect(agg.overall).toBe('unknown');
    expect(agg.view().reason).toBe('required gateway is unknown (its sidecar has no check); optional slack is unknown (its sidecar has no check)');
    // An instance that does report is judged; those that report unknown are left out of the judgement.
    hb('gateway', 'gw-2');
    expect(agg.view('gateway').components[0]?.status).toBe('healthy');
    expect(agg.overall).toBe('degraded');
    expect(agg.view().reason).toBe('optional slack is unknown (its sidecar has no check)');
    hb('gateway', 'gw-2', { status: 'unhealthy' });
    expect(agg.overall).toBe('unhealthy');
    hb('gateway', 'gw-2', { state: 'stopping' });
    // Checks that have not answered yet say so; a silent one is still unknown, not degraded.
    hb('gateway', 'sidecar-1', { status: 'unknown', state: 'starting' });
    expect(agg.view().reason).toBe('required gateway is unknown (its checks have not answered yet); optional slack is unknown (its sidecar has no check)');
    run(1600);
    expect(agg.view('gateway').components[0]?.instances[0]?.status).toBe('suspect');
    expect(agg.view('gateway').components[0]?.status).toBe('unknown');
    expect(agg.overall).toBe('unknown');
    run(1500);
    expect(agg.view('gateway').components[0]?.status).toBe('missing');
    expect(agg.overall).toBe('unhealthy');
  });

  it('caps each component: a flood under one name displaces only that name\'s own instances', () => {
    const { agg, hb, of } = setup({ required: ['gateway'], maxPerComponent: 50 });
    const names = (component: string) => agg.view(component).components[0]?.instances.map((i) => i.instance) ?? [];
    const evicted = () => of('instance').filter((t) => t.reason === 'evicted');
    hb('gateway', 'g1');
    hb('gateway', 'g1');
    hb('tool', 't1');
    for (let i = 0; i < 1000; i++) hb('flood', `f${i}`);
    expect(names('flood')).toHaveLength(50);
    expect(names('tool')).toEqual(['t1']);
    expect(names('gateway')).toEqual(['g1']);
    // Room was made 950 times, each time by dropping one of the flood's own instances.
    expect(evicted()).toHaveLength(950);
    expect(new Set(evicted().map((t) => t.component))).toEqual(new Set(['flood']));
    for (let i = 0; i < 100; i++) hb('gateway', `g-forged-${i}`);
    // At its cap with every instance live, a rostered component drops those heard once, never one that keeps beating.
    expect(names('gateway')).toContain('g1');
    expect(names('gateway')).toHaveLength(50);
    expect(evicted().slice(950).every((t) => t.component === 'gateway' && t.instance !== 'g1')).toBe(true);
    expect(evicted()).toHaveLength(950 + 51);
    // The other components kept every instance they had.
    expect(names('tool')).toEqual(['t1']);
    expect(names('flood')).toHaveLength(50);
    expect(agg.trackedCount).toBe(50 + 1 + 50);
  });

  it('clamps the interval a sender declares to the configured maximum', () => {
    const clock = new FakeClock();
    const transitions: Transition[] = [];
    const agg = new HealthAggregator({ clock, intervalMs: H, required: ['gateway'], optional: [], maxInstances: 100, maxIntervalMs: 5000, onTransition: (t) => transitions.push(t) });
    agg.setConnected(true);
    // One forged heartbeat declaring an hour would keep a dead gateway healthy for 90 minutes.
    agg.ingest({ status: 'healthy', component: 'gateway', instance: 'g', intervalMs: 3_600_000 });
    for (let t = 0; t < 20_000; t += 100) {
      clock.advance(100);
      agg.tick();
    }
    expect(agg.view('gateway').components[0]?.instances[0]).toMatchObject({ status: 'stale', intervalMs: 5000 });
    expect(agg.overall).toBe('unhealthy');
  });

  it('is unknown, judging no one, while its own heartbeats do not come back or the server does not answer', () => {
    const clock = new FakeClock();
    const transitions: Transition[] = [];
    const agg = new HealthAggregator({ clock, intervalMs: H, required: ['gateway'], optional: [], maxInstances: 100, self: { component: 'sentinel', instance: 's1' }, onTransition: (t) => transitions.push(t) });
    agg.setConnected(true);
    const beat = (component: string, instance: string) => agg.ingest({ status: 'healthy', component, instance, intervalMs: H });
    const run = (ms: number, beating: boolean) => {
      for (let t = 0; t < ms; t += 100) {
        clock.advance(100);
        if (beating && t % 1000 === 0) {
          beat('sentinel', 's1');
          beat('gateway', 'g1');
        }
        agg.tick();
      }
    };
    run(3000, true);
    expect(agg.overall).toBe('healthy');
    // The bus stalls: nothing comes, ours included.
    run(10_000, false);
    expect(agg.overall).toBe('unknown');
    expect(agg.view().reason).toMatch(/^cut off from the bus: the sentinel has not heard its own heartbeat for \d/);
    // Silent for 1.5 intervals is suspect, and true; stale, everyone's failure, it never calls.
    expect(transitions.filter((t) => t.to === 'stale')).toEqual([]);
    // Back: every instance gets a full interval again.
    run(3000, true);
    expect(agg.overall).toBe('healthy');
    expect(transitions.filter((t) => t.to === 'stale')).toEqual([]);
    // The server not answering (found by the monitor) is a cut-off too.
    agg.setStalled('cut off from the bus: the server has not answered for 1.0 s');
    expect(agg.overall).toBe('unknown');
    run(10_000, false);
    expect(transitions.filter((t) => t.to === 'stale')).toEqual([]);
    agg.setStalled(undefined);
    run(3000, true);
    expect(agg.overall).toBe('healthy');
  });

  it('judges nobody late: a sweep long after the last (the sentinel was paused) judges silence from then on', () => {
    const { agg, clock, run, hb, of } = setup({ required: ['gateway'] });
    const pauses: number[] = [];
    void pauses;
    hb('gateway', 'g1');
    run(1100);
    hb('gateway', 'g1');
    // Paused for 6 s: no sweep ran, and g1's heartbeats of those 6 s wait unread.
    clock.advance(6000);
    agg.tick();
    expect(of('instance', 'g1').map((t) => t.to)).toEqual(['healthy']);
    hb('gateway', 'g1');
    run(1000);
    expect(of('instance', 'g1').map((t) => t.to)).toEqual(['healthy']);
    expect(agg.overall).toBe('healthy');
  });

  it('forgets long-stale instances', () => {
    const { agg, run, hb, of } = setup();
    hb('a', '1');
    run(70_000);
    expect(of('instance', '1').map((t) => [t.to, t.reason])).toEqual([
      ['healthy', 'join'],
      ['suspect', 'silent'],
      ['stale', 'stale'],
      ['gone', 'expired'],
    ]);
    expect(agg.trackedCount).toBe(0);
  });

  it('understands plain Nachos heartbeats without instance or interval', () => {
    const { agg, run } = setup({ required: ['gateway'] });
    agg.ingest({ status: 'healthy', component: 'gateway', version: '0.4.0', uptime: 12, checks: { redis: 'ok' } });
    run(1100);
    expect(agg.view('gateway').components[0]?.instances[0]).toMatchObject({
      instance: 'gateway',
      intervalMs: H,
      state: 'running',
      checks: { redis: 'ok' },
      policyRevision: null,
    });
    expect(agg.overall).toBe('healthy');
  });

  it('shows policy convergence: who lags, for how long, and how long convergence took', () => {
    const { agg, run, hb } = setup();
    hb('gateway', 'g1', { policy: { revision: 'r0' } });
    hb('gateway', 'g2', { policy: { revision: 'r0' } });
    hb('llm', 'l1'); // reports no policy: not counted
    run(1100);
    agg.setPolicy('r1');
    for (let i = 0; i < 2; i++) {
      hb('gateway', 'g1', { policy: { revision: 'r0' } });
      hb('gateway', 'g2', { policy: { revision: 'r0' } });
      run(1000);
    }
    hb('gateway', 'g1', { policy: { revision: 'r1' } });
    hb('gateway', 'g2', { policy: { revision: 'r0' } });
    run(1000);
    let policy = agg.view().policy;
    expect(policy).toMatchObject({ revision: 'r1', reporting: 2, onRevision: 1, converged: false, lastConvergence: null });
    expect(policy.behind).toEqual([{ component: 'gateway', instance: 'g2', revision: 'r0', behindForMs: 3000 }]);
    expect(policy.summary).toBe('1 of 2 on revision r1, gateway/g2 behind for 3 s');
    hb('gateway', 'g2', { policy: { revision: 'r1' } });
    policy = agg.view().policy;
    expect(policy).toMatchObject({ onRevision: 2, converged: true, lastConvergence: { revision: 'r1', tookMs: 3000 } });
    expect(policy.summary).toBe('2 of 2 on revision r1');
  });

  it('publishes every transition exactly once', () => {
    const { transitions, run, hb } = setup({ required: ['a'], optional: ['b'] });
    for (let round = 0; round < 30; round++) {
      hb('a', `a${round % 3}`, { status: round % 4 === 0 ? 'degraded' : 'healthy' });
      if (round % 5 === 0) hb('b', 'b1');
      run(700);
    }
    // Something happened (a0..a2 come and go, degrade, b1 goes silent between beats)...
    expect(transitions.length).toBeGreaterThan(10);
    // ...and no transition repeats its predecessor for the same subject, and none is a no-op.
    const last = new Map<string, string>();
    for (const t of transitions) {
      const subject = `${t.scope}/${t.component}/${t.instance}`;
      expect(t.from).not.toBe(t.to);
      // After `gone`, the same subject can only come back as new.
      if (last.has(subject)) expect(t.from).toBe(last.get(subject) === 'gone' ? null : last.get(subject));
      last.set(subject, t.to);
    }
  });

  it('reaches the same overall status whatever order the heartbeats arrive in (property)', () => {
    const component = fc.constantFrom('gateway', 'llm', 'slack', 'tool-a', 'tool-b');
    const heartbeat = fc.record({
      component,
      instance: fc.constantFrom('i1', 'i2', 'i3'),
      status: fc.constantFrom('healthy', 'degraded', 'unhealthy', 'unknown'),
    });
    // Distinct (component, instance) pairs, so that arrival order cannot change what each last said.
    const batch = fc.uniqueArray(heartbeat, { selector: (h) => `${h.component}/${h.instance}`, maxLength: 12 });
    fc.assert(
      fc.property(batch, fc.infiniteStream(fc.nat()), (beats, randoms) => {
        const outcome = (order: typeof beats) => {
          const { agg, run, hb } = setup({ required: ['gateway', 'llm'], optional: ['slack'] });
          run(1100);
          for (const b of order) hb(b.component, b.instance, { status: b.status });
          const view = agg.view();
          return { overall: agg.overall, components: view.components.map((c) => [c.name, c.status]) };
        };
        const shuffled = [...beats];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = (randoms.next().value as number) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j] as (typeof beats)[number], shuffled[i] as (typeof beats)[number]];
        }
        expect(outcome(shuffled)).toEqual(outcome(beats));
        expect(outcome([...beats].reverse())).toEqual(outcome(beats));
      }),
      { numRuns: 500 },
    );
  });
});
