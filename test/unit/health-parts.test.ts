import { describe, expect, it } from 'vitest';
import { PolicyConvergence } from '../../src/health/convergence.js';
import type { Heartbeat } from '../../src/health/heartbeat-payload.js';
import { DisplacedKeys } from '../../src/health/displaced-keys.js';
import { InstanceTable, type InstanceChange, type Role, type Tracked } from '../../src/health/instances.js';
import { componentStatus, overallVerdict } from '../../src/health/verdict.js';
import { componentReason, instanceWhy } from '../../src/health/views.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * The aggregator's parts, each on its own and on a fake clock: the instance
 * table (tracking, restarts, room), the status rules (verdict.ts), policy
 * convergence, and the wording of the views. aggregator.test.ts tests them
 * together, through heartbeats.
 */

const H = 1000;

function heartbeat(component: string, instance: string, extra: Partial<Heartbeat> = {}): Heartbeat {
  return { status: 'healthy', component, instance, intervalMs: H, state: 'running', checks: {}, ...extra } as Heartbeat;
}

function table(roles: Record<string, Role> = {}, caps: { maxInstances?: number; maxPerComponent?: number } = {}) {
  const changes: InstanceChange[] = [];
  const t = new InstanceTable({
    maxInstances: caps.maxInstances ?? 100,
    maxPerComponent: caps.maxPerComponent ?? 100,
    roles: new Map(Object.entries(roles)),
    onChange: (c) => changes.push(c),
  });
  const clock = new FakeClock();
  /** Hears a heartbeat as the aggregator would: adds the instance (making room) or updates it. */
  const hear = (hb: Heartbeat): Tracked | undefined => {
    const known = t.get(hb.component, hb.instance as string);
    if (known) {
      t.heard(known, hb, clock.now(), clock.wallNow(), H);
      return known;
    }
    if (!t.makeRoom(hb.component)) return undefined;
    return t.add(hb, hb.instance as string, clock.now(), clock.wallNow(), H, t.components.has(hb.component));
  };
  return { t, changes, clock, hear };
}

describe('the instance table', () => {
  it('tracks instances by component, and keeps the counts a component status is computed from', () => {
    const { t, hear } = table({ gateway: 'required' });
    hear(heartbeat('gateway', 'gw-1'));
    hear(heartbeat('gateway', 'gw-2', { status: 'unhealthy' }));
    const entry = t.entry('gateway');
    expect(t.size).toBe(2);
    expect({ current: entry.current, unhealthy: entry.unhealthy, notHealthy: entry.notHealthy }).toEqual({ current: 2, unhealthy: 1, notHealthy: 1 });
    expect(componentStatus(entry)).toBe('degraded');
    const second = t.get('gateway', 'gw-2') as Tracked;
    t.heard(second, heartbeat('gateway', 'gw-2'), 0, 0, H);
    expect(componentStatus(entry)).toBe('healthy');
    t.fallSilent(second, 'stale');
    t.fallSilent(t.get('gateway', 'gw-1') as Tracked, 'stale');
    expect(componentStatus(entry)).toBe('missing');
  });

  it('takes a new instance on the same host for a restart: of a predecessor already silent, or one that falls silent after', () => {
    const { t, hear, clock, changes } = table({ gateway: 'required' });
    const old = hear(heartbeat('gateway', 'host-a-1f2e3d')) as Tracked;
    clock.advance(2 * H);
    t.fallSilent(old, 'suspect');
    hear(heartbeat('gateway', 'host-a-9c8b7a'));
    expect(changes.at(-1)).toMatchObject({ t: old, to: 'gone', reason: 'restart' });
    expect(t.get('gateway', 'host-a-1f2e3d')).toBeUndefined();
    // The newcomer first, then the silence: the aggregator asks, and the newcomer stands for it once.
    const later = table({ gateway: 'required' });
    const first = later.hear(heartbeat('gateway', 'host-b-000001')) as Tracked;
    later.clock.advance(H);
    later.hear(heartbeat('gateway', 'host-b-000002'));
    later.t.fallSilent(first, 'suspect');
    expect(later.t.replacedBy(first)).toBe(true);
    // Replicas on other hosts are not each other's restarts: a silent one is lost.
    const other = table({ llm: 'required' });
    const a = other.hear(heartbeat('llm', 'host-a-111111')) as Tracked;
    other.hear(heartbeat('llm', 'host-b-222222'));
    other.t.fallSilent(a, 'suspect');
    expect(other.t.replacedBy(a)).toBe(false);
  });

  it('makes room from the oldest stale instance, then one heard once, then from outside the roster; never from a live rostered instance heard twice', () => {
    const { t, hear, changes } = table({ gateway: 'required' }, { maxInstances: 3 });
    const evicted = () => changes.filter((c) => c.reason === 'evicted').map((c) => c.t.instance);
    const gw = hear(heartbeat('gateway', 'gw-1')) as Tracked;
    hear(heartbeat('gateway', 'gw-1'));
    hear(heartbeat('x', 'x-1'));
    hear(heartbeat('x', 'x-1'));
    hear(heartbeat('y', 'y-1'));
    // Full: the instance heard only once goes first (y-1), though x-1 was heard less recently.
    expect(hear(heartbeat('z', 'z-1'))).toBeDefined();
    expect(evicted()).toEqual(['y-1']);
    // Every one heard twice: the instance outside the roster heard least recently goes.
    hear(heartbeat('z', 'z-1'));
    expect(hear(heartbeat('w', 'w-1'))).toBeDefined();
    expect(evicted()).toEqual(['y-1', 'x-1']);
    expect(t.get('gateway', 'gw-1')).toBe(gw);
    // Only rostered instances left: one heard once makes room; those heard twice are kept, and then a newcomer is refused.
    const full = table({ gateway: 'required', llm: 'required' }, { maxInstances: 2 });
    full.hear(heartbeat('gateway', 'gw-1'));
    full.hear(heartbeat('gateway', 'gw-1'));
    full.hear(heartbeat('llm', 'l-1'));
    expect(full.hear(heartbeat('flood', 'f-1'))).toBeDefined();
    expect(full.t.get('llm', 'l-1')).toBeUndefined();
    full.hear(heartbeat('flood', 'f-1'));
    expect(full.hear(heartbeat('flood', 'f-2'))).toBeDefined();
    expect(full.t.get('flood', 'f-1')).toBeUndefined();
    full.hear(heartbeat('flood', 'f-2'));
    full.hear(heartbeat('llm', 'l-2'));
    full.hear(heartbeat('llm', 'l-2'));
    expect(full.t.get('gateway', 'gw-1')).toBeDefined();
    expect(full.hear(heartbeat('flood', 'f-3'))).toBeUndefined();
    expect(full.t.size).toBe(2);
  });

  it('makes room at a component\'s cap from instances heard once, even of a rostered component, and lets one displaced so back in as heard twice', () => {
    const { t, hear, changes } = table({ gateway: 'required' }, { maxPerComponent: 3 });
    const evicted = () => changes.filter((c) => c.reason === 'evicted').map((c) => c.t.instance);
    hear(heartbeat('gateway', 'real'));
    hear(heartbeat('gateway', 'f-1'));
    hear(heartbeat('gateway', 'f-2'));
    // At the cap, every one live: the oldest heard only once goes, though the component is rostered.
    hear(heartbeat('gateway', 'f-3'));
    expect(evicted()).toEqual(['real']);
    // Back for its second heartbeat: remembered as displaced, it comes in as heard twice, displacing one heard once...
    const back = hear(heartbeat('gateway', 'real')) as Tracked;
    expect(back.beats).toBe(2);
    expect(evicted()).toEqual(['real', 'f-1']);
    // ...and instances heard once never displace it again.
    for (let i = 4; i < 50; i++) hear(heartbeat('gateway', `f-${i}`));
    expect(t.get('gateway', 'real')).toBe(back);
    // Every place held by one heard twice: a newcomer is refused.
    hear(heartbeat('gateway', 'f-48'));
    hear(heartbeat('gateway', 'f-49'));
    expect(hear(heartbeat('gateway', 'f-50'))).toBeUndefined();
    expect([...t.entry('gateway').instances.values()].map((i) => i.instance)).toEqual(['real', 'f-48', 'f-49']);
  });

  it('holds a component to its own cap: a flood under one name displaces only that name', () => {
    const { t, hear } = table({}, { maxPerComponent: 5 });
    hear(heartbeat('gateway', 'gw-1'));
    for (let i = 0; i < 50; i++) hear(heartbeat('flood', `f-${i}`));
    expect(t.entry('flood').instances.size).toBe(5);
    expect(t.get('gateway', 'gw-1')).toBeDefined();
  });
});

describe('the memory of displaced instances', () => {
  it('finds a key remembered, once, in a table of fixed size; four later keys in its set push it out', () => {
    const keys = new DisplacedKeys(4, 7);
    expect(keys.slots).toBe(16);
    keys.remember('gateway\u0000real');
    expect(keys.take('gateway\u0000other')).toBe(false);
    expect(keys.take('gateway\u0000real')).toBe(true);
    expect(keys.take('gateway\u0000real')).toBe(false);
    // 16 slots: of 100 keys remembered, at most 16 are still there, and the last four are.
    for (let i = 0; i < 100; i++) keys.remember(`gateway\u0000f-${i}`);
    let found = 0;
    for (let i = 0; i < 96; i++) if (keys.take(`gateway\u0000f-${i}`)) found++;
    expect(found).toBeLessThanOrEqual(12);
    for (let i = 96; i < 100; i++) expect(keys.take(`gateway\u0000f-${i}`)).toBe(true);
    // Remembered twice, a key is there once: taken, it is gone.
    keys.remember('gateway\u0000twice');
    keys.remember('gateway\u0000twice');
    expect(keys.take('gateway\u0000twice')).toBe(true);
    expect(keys.take('gateway\u0000twice')).toBe(false);
    expect(() => new DisplacedKeys(1)).toThrow(/at least 2\^2 slots/);
  });

  it('keeps a key through the displacements that follow it as a 4-way table does, far better than a direct-mapped one', () => {
    // 1,024 slots (256 sets of 4) and 500 keys after the one watched: it survives unless four of them
    // land in its set, P = 0.865 (Poisson, mean 500/256); a direct-mapped table of 1,024 slots would
    // keep it with P = 0.614. 4,000 trials, each with its own seed: the standard deviation is 0.005.
    const trials = 4000;
    let kept = 0;
    for (let seed = 1; seed <= trials; seed++) {
      const keys = new DisplacedKeys(10, seed);
      keys.remember('gateway\u0000real');
      for (let i = 0; i < 500; i++) keys.remember(`gateway\u0000forged-${i}`);
      if (keys.take('gateway\u0000real')) kept++;
    }
    expect(kept / trials).toBeGreaterThan(0.83);
    expect(kept / trials).toBeLessThan(0.9);
  });
});

describe('the status rules', () => {
  it('takes an instance that reports unknown as alive, vouching for nothing, from counts', () => {
    const { t, hear } = table({ gateway: 'required' });
    const sidecar = hear(heartbeat('gateway', 'sidecar-1', { status: 'unknown' })) as Tracked;
    const entry = t.entry('gateway');
    expect({ current: entry.current, unknown: entry.unknown, notHealthy: entry.notHealthy }).toEqual({ current: 1, unknown: 1, notHealthy: 0 });
    expect(componentStatus(entry)).toBe('unknown');
    hear(heartbeat('gateway', 'gw-2', { status: 'degraded' }));
    expect(componentStatus(entry)).toBe('degraded');
    // Silent, it still vouches for nothing: it does not make the component degraded.
    hear(heartbeat('gateway', 'gw-2'));
    t.fallSilent(sidecar, 'suspect');
    expect(componentStatus(entry)).toBe('healthy');
    expect(componentReason(entry, componentStatus(entry))).toBe('1 of 2 silent for over 1.5 intervals, 1 of 2 unknown (its sidecar has no check)');
  });

  it('judges the system from its roster, worst first, with the reason in words', () => {
    const { t, hear } = table({ gateway: 'required', slack: 'optional' });
    for (const e of t.components.values()) e.status = componentStatus(e);
    expect(overallVerdict([t.entry('gateway'), t.entry('slack')], null, new Set())).toEqual([
      'unhealthy',
      'required gateway is missing (has not reported); optional slack is missing (has not reported)',
    ]);
    hear(heartbeat('gateway', 'gw-1'));
    for (const e of t.components.values()) e.status = componentStatus(e);
    expect(overallVerdict([t.entry('gateway'), t.entry('slack')], null, new Set())).toEqual(['degraded', 'optional slack is missing (has not reported)']);
    hear(heartbeat('slack', 's-1'));
    for (const e of t.components.values()) e.status = componentStatus(e);
    expect(overallVerdict([t.entry('gateway'), t.entry('slack')], null, new Set())).toEqual(['healthy', 'every required component is healthy']);
    // Outside the roster, an unhealthy component degrades the system, named; past five, counted.
    const observed = new Set(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    const [status, reason] = overallVerdict([t.entry('gateway')], null, observed);
    expect(status).toBe('degraded');
    expect(reason).toBe('a is unhealthy; b is unhealthy; c is unhealthy; d is unhealthy; e is unhealthy; and 2 more unhealthy');
  });

  it('says why a required component fails, from its failing checks', () => {
    const { t, hear } = table({ llm: 'required' });
    hear(heartbeat('llm', 'l-1', { status: 'unhealthy', checks: { upstream: 'error' }, details: { upstream: { message: 'HTTP 503, expected 200' } } } as Partial<Heartbeat>));
    const entry = t.entry('llm');
    entry.status = componentStatus(entry);
    expect(overallVerdict([entry], null, new Set())).toEqual(['unhealthy', 'required llm is unhealthy (failing upstream: HTTP 503, expected 200)']);
    expect(componentReason(entry)).toBe('1 of 1 unhealthy, failing upstream: HTTP 503, expected 200');
  });
});

describe('policy convergence', () => {
  it('measures convergence from the announcement to the last instance, on the clock it is handed', () => {
    const clock = new FakeClock();
    const { t, hear } = table();
    const convergence = new PolicyConvergence();
    hear(heartbeat('gateway', 'gw-1', { policy: { revision: 'old' } } as Partial<Heartbeat>));
    hear(heartbeat('llm', 'l-1', { policy: { revision: 'old' } } as Partial<Heartbeat>));
    convergence.set('new', clock.now(), clock.wallNow());
    clock.advance(300);
    hear(heartbeat('gateway', 'gw-1', { policy: { revision: 'new' } } as Partial<Heartbeat>));
    convergence.check(t.all(), clock.now(), clock.wallNow());
    const lagging = convergence.view(t.all(), clock.now());
    expect(lagging).toMatchObject({ revision: 'new', reporting: 2, onRevision: 1, converged: false, lastConvergence: null });
    expect(lagging.behind).toEqual([{ component: 'llm', instance: 'l-1', revision: 'old', behindForMs: 300 }]);
    expect(lagging.summary).toBe('1 of 2 on revision new, llm/l-1 behind for 300 ms');
    clock.advance(1200);
    hear(heartbeat('llm', 'l-1', { policy: { revision: 'new' } } as Partial<Heartbeat>));
    convergence.check(t.all(), clock.now(), clock.wallNow());
    expect(convergence.view(t.all(), clock.now())).toMatchObject({ converged: true, lastConvergence: { revision: 'new', tookMs: 1500 } });
  });

  it('is not converged with nobody reporting, and leaves stale instances out', () => {
    const clock = new FakeClock();
    const { t, hear } = table();
    const convergence = new PolicyConvergence();
    convergence.set('r1', clock.now(), clock.wallNow());
    hear(heartbeat('gateway', 'gw-1'));
    convergence.check(t.all(), clock.now(), clock.wallNow());
    expect(convergence.view(t.all(), clock.now()).converged).toBe(false);
    const old = hear(heartbeat('llm', 'l-1', { policy: { revision: 'r0' } } as Partial<Heartbeat>)) as Tracked;
    hear(heartbeat('llm', 'l-2', { policy: { revision: 'r1' } } as Partial<Heartbeat>));
    t.fallSilent(old, 'stale');
    convergence.check(t.all(), clock.now(), clock.wallNow());
    expect(convergence.counts(t.all())).toEqual({ reporting: 1, onRevision: 1 });
    expect(convergence.view(t.all(), clock.now()).converged).toBe(true);
  });
});

describe('the wording', () => {
  it('says why an instance moved', () => {
    const { hear } = table();
    const t = hear(heartbeat('gateway', 'gw-1', { intervalMs: 5000 })) as Tracked;
    expect(instanceWhy(t, 'stale', 'stale')).toBe('no heartbeat for over 2.5 intervals (1 s each)');
    expect(instanceWhy(t, 'gone', 'restart')).toBe('replaced by a newer instance (a restart)');
    expect(instanceWhy(t, 'gone', 'leave')).toBe('left cleanly (a stopping heartbeat)');
  });
});
